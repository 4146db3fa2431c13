//! Client configuration: key, base URL, Runway version, timeouts, retries, request limit.

use std::{env, fmt, sync::Arc, time::Duration};

use reqwest::{header::HeaderValue, Url};
use tokio::sync::Semaphore;

use crate::{
    client::PollRoute,
    error::Error,
    generated,
    hooks::{Inner, Shared},
    learn::{Learned, Learning},
    retry::RetryPolicy,
    WaitOptions,
};

/// Where requests go unless told otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.cometapi.com";
/// The `X-Runway-Version` sent unless told otherwise.
pub const DEFAULT_RUNWAY_VERSION: &str = "2024-11-06";
/// Environment variable read for the API key.
pub const ENV_API_KEY: &str = "COMETAPI_KEY";
/// Environment variable read for the base URL.
pub const ENV_BASE_URL: &str = "COMETAPI_BASE_URL";
/// How long the pool keeps an idle connection (reqwest's default).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client for CometAPI's Runway routes. Cheap to clone (one connection pool, shared);
/// `Send + Sync`, so one client serves a whole program.
///
/// ```no_run
/// # async fn run() -> Result<(), cometapi_runway::Error> {
/// use cometapi_runway::{Client, ImageToVideo};
/// let client = Client::from_env()?; // COMETAPI_KEY, optional COMETAPI_BASE_URL
/// let task = client.generate(&ImageToVideo::new("https://example.com/cat.jpg")).await?;
/// println!("{}", task.output[0]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) raw: generated::Client,
    pub(crate) runway_version: Arc<str>,
    pub(crate) poll_route: Arc<PollRoute>,
    pub(crate) wait: WaitOptions,
    pub(crate) learning: Arc<Learning>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url())
            .field("runway_version", &self.runway_version)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with every default; the key and base URL fall back to the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `COMETAPI_KEY` and, if set, `COMETAPI_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::default().build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        progenitor_client::ClientInfo::baseurl(&self.raw)
    }

    /// The `X-Runway-Version` sent with every request.
    pub fn runway_version(&self) -> &str {
        &self.runway_version
    }

    /// What this client (and its clones) learned from the tasks it waited on to success, to
    /// keep across runs ([`ClientBuilder::learned`] reads it back).
    ///
    /// ```
    /// # let client = cometapi_runway::Client::builder().api_key("sk-test").build().unwrap();
    /// let saved = serde_json::to_string(&client.learned()).unwrap();
    /// # assert!(saved.starts_with('{'));
    /// ```
    pub fn learned(&self) -> Learned {
        self.learning.learned()
    }

    /// The generated low-level client, for calls the typed layer does not cover.
    ///
    /// Requests made through it still pass the crate's hooks (key, retries, request limit),
    /// but `X-Runway-Version` must be passed by hand.
    pub fn raw(&self) -> &generated::Client {
        &self.raw
    }
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::Client;
/// let client = Client::builder()
///     .api_key("sk-test")
///     .base_url("http://127.0.0.1:8080")
///     .request_timeout(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
/// assert_eq!(client.runway_version(), "2024-11-06");
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    runway_version: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    max_concurrent_requests: usize,
    allow_insecure_http: bool,
    wait: WaitOptions,
    http: Option<reqwest::Client>,
    learned: Learned,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("runway_version", &self.runway_version)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            base_url: None,
            runway_version: DEFAULT_RUNWAY_VERSION.to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_concurrent_requests: 64,
            allow_insecure_http: false,
            wait: WaitOptions::default(),
            http: None,
            learned: Learned::default(),
        }
    }
}

impl ClientBuilder {
    /// The CometAPI key (default: `COMETAPI_KEY`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Where to send requests (default: `COMETAPI_BASE_URL`, else `https://api.cometapi.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The `X-Runway-Version` header sent with every request (default `2024-11-06`).
    pub fn runway_version(mut self, version: impl Into<String>) -> Self {
        self.runway_version = version.into();
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long one request may take, body included (default 60 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// How failed requests are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The most API requests in flight at once on this client and its clones (default 64); a
    /// request keeps its slot until its answer has been read.
    ///
    /// Connections follow from it. Over HTTP/2 (what the service speaks; ALPN picks it) every
    /// request shares one connection. Over HTTP/1.1 (a plain-`http://` simulator, a proxy that
    /// only speaks 1.1) each request in flight uses one connection and the pool keeps at most
    /// `n` idle (`pool_max_idle_per_host`): never more than `2n` open, and about `n` under load
    /// — a finished request's connection reaches the pool a moment after its slot is freed, and
    /// the request taking the slot may open a spare meanwhile, which the pool keeps and reuses
    /// (BENCHMARKS.md measures how often). Not with a client passed to
    /// [`ClientBuilder::http_client`], whose own pool settings apply.
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }

    /// Allow `http://` to a host other than loopback (default: refused, the key would travel
    /// in clear text).
    pub fn allow_insecure_http(mut self, yes: bool) -> Self {
        self.allow_insecure_http = yes;
        self
    }

    /// Defaults for [`Client::wait`] and [`Client::generate`].
    pub fn wait_options(mut self, options: WaitOptions) -> Self {
        self.wait = options;
        self
    }

    /// Start from what an earlier client learned ([`Client::learned`]), e.g. read back from a
    /// file: the first polls of new tasks are placed from it at once.
    pub fn learned(mut self, learned: Learned) -> Self {
        self.learned = learned;
        self
    }

    /// Use this `reqwest::Client` (its timeouts and pool) instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the configuration and builds the client. Nothing is sent.
    pub fn build(self) -> Result<Client, Error> {
        let key = match self.api_key {
            Some(key) => key,
            None => env::var(ENV_API_KEY)
                .map_err(|_| Error::invalid("api_key", "(not set)", format!("pass an API key or set {ENV_API_KEY}")))?,
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::invalid("api_key", "\"\"", "must not be empty"));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| Error::invalid("api_key", "(redacted)", "must be printable ASCII without line breaks"))?;
        authorization.set_sensitive(true);

        let base_url = match self.base_url {
            Some(url) => url,
            None => env::var(ENV_BASE_URL).unwrap_or_else(|_| DEFAULT_BASE_URL.to_string()),
        };
        let base_url = check_base_url(&base_url, self.allow_insecure_http)?;

        let runway_version = match HeaderValue::from_str(&self.runway_version) {
            Ok(value) if !self.runway_version.trim().is_empty() => value,
            _ => {
                return Err(Error::invalid(
                    "runway_version",
                    format!("{:?}", self.runway_version),
                    "must be a non-empty header value such as 2024-11-06",
                ))
            }
        };
        if self.max_concurrent_requests == 0 {
            return Err(Error::invalid("max_concurrent_requests", 0, "must be at least 1"));
        }

        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(self.connect_timeout)
                .timeout(self.request_timeout)
                .pool_max_idle_per_host(self.max_concurrent_requests)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .build()
                .map_err(|e| Error::invalid("http_client", e, "reqwest could not build a client"))?,
        };
        let inner = Inner(Arc::new(Shared {
            authorization,
            retry: self.retry,
            limit: Arc::new(Semaphore::new(self.max_concurrent_requests)),
        }));
        Ok(Client {
            poll_route: Arc::new(PollRoute::new(&base_url, runway_version)),
            raw: generated::Client::new_with_client(&base_url, http, inner),
            runway_version: self.runway_version.into(),
            wait: self.wait,
            learning: Arc::new(Learning::new(self.learned)),
        })
    }
}

/// Parses the base URL and refuses clear-text HTTP beyond loopback unless allowed.
fn check_base_url(raw: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::invalid("base_url", format!("{raw:?}"), format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback && !allow_insecure_http {
                return Err(Error::invalid(
                    "base_url",
                    format!("{raw:?}"),
                    "plain http:// is only allowed to loopback (the key would travel in clear text); use https:// or allow insecure HTTP explicitly",
                ));
            }
        }
        other => {
            return Err(Error::invalid("base_url", format!("{raw:?}"), format!("scheme {other} is not http or https")))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid("base_url", format!("{raw:?}"), "must not carry a query or fragment"));
    }
    // The generated client appends `/runwayml/...`; a trailing slash would double it.
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::check_base_url;

    #[test]
    fn base_url_rules() {
        assert_eq!(check_base_url("https://api.cometapi.com/", false).unwrap(), "https://api.cometapi.com");
        assert!(check_base_url("http://127.0.0.1:9/", false).is_ok());
        assert!(check_base_url("http://localhost:9", false).is_ok());
        assert!(check_base_url("http://[::1]:9", false).is_ok());
        let err = check_base_url("http://api.cometapi.com", false).unwrap_err().to_string();
        assert!(
            err.contains("base_url") && err.contains("http://api.cometapi.com") && err.contains("loopback"),
            "{err}"
        );
        assert!(check_base_url("http://api.cometapi.com", true).is_ok());
        assert!(check_base_url("ftp://x", true).is_err());
        assert!(check_base_url("not a url", true).is_err());
    }
}
