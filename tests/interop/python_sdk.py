"""The official Runway Python SDK (`runwayml`), unmodified, against `cometapi-runway mock-server`.

Usage: python python_sdk.py BASE_URL KEY

Creates a task and waits for it with the SDK's own `wait_for_task_output`, then fetches the
output URL without the key, as a CDN link must work. Exits non-zero on any failure.
"""

import sys
import time
import urllib.request

import runwayml
from runwayml import RunwayML

base_url, key = sys.argv[1], sys.argv[2]
# CometAPI serves Runway's routes under /runwayml: the SDK's paths start at /v1.
client = RunwayML(api_key=key, base_url=f"{base_url}/runwayml", max_retries=0)

started = time.monotonic()
task = client.image_to_video.create(
    model="gen4_turbo",
    prompt_image="https://example.com/cat.jpg",
    prompt_text="the cat yawns",
    ratio="1280:720",
    duration=5,
).wait_for_task_output(timeout=60)
took = time.monotonic() - started

assert task.status == "SUCCEEDED", task
url = task.output[0]
assert url.startswith(base_url) and url.endswith(".mp4"), url
with urllib.request.urlopen(url, timeout=10) as response:  # no key: the output is a plain link
    head = response.read(8)
assert head[4:8] == b"ftyp", head
print(f"python runwayml {runwayml.__version__}: {task.id} SUCCEEDED in {took:.1f}s -> {url}")
