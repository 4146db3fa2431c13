// The official Runway Node SDK (`@runwayml/sdk`), unmodified, against `cometapi-runway mock-server`.
//
// Usage: node node_sdk.cjs BASE_URL KEY   (with @runwayml/sdk on NODE_PATH)
//
// Creates a task and waits for it with the SDK's own `waitForTaskOutput`, then fetches the
// output URL without the key. Exits non-zero on any failure.

const RunwayML = require('@runwayml/sdk');
const { VERSION: version } = require('@runwayml/sdk/version');

async function main() {
  const [baseUrl, key] = process.argv.slice(2);
  // CometAPI serves Runway's routes under /runwayml: the SDK's paths start at /v1.
  const client = new RunwayML({ apiKey: key, baseURL: `${baseUrl}/runwayml`, maxRetries: 0 });

  const started = Date.now();
  const task = await client.imageToVideo
    .create({
      model: 'gen4_turbo',
      promptImage: 'https://example.com/cat.jpg',
      promptText: 'the cat yawns',
      ratio: '1280:720',
      duration: 5,
    })
    .waitForTaskOutput({ timeout: 60_000 });
  const took = (Date.now() - started) / 1000;

  if (task.status !== 'SUCCEEDED') throw new Error(`not SUCCEEDED: ${JSON.stringify(task)}`);
  const url = task.output[0];
  if (!url.startsWith(baseUrl) || !url.endsWith('.mp4')) throw new Error(`odd output URL ${url}`);
  const response = await fetch(url); // no key: the output is a plain link
  const head = Buffer.from(await response.arrayBuffer()).subarray(4, 8).toString();
  if (!response.ok || head !== 'ftyp') throw new Error(`not an MP4: ${response.status} ${head}`);
  console.log(`node @runwayml/sdk ${version}: ${task.id} SUCCEEDED in ${took.toFixed(1)}s -> ${url}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
