//! Downloads: small files whole (Release files, fetched fresh every time),
//! and content named by its SHA-256 (indexes, packages) into a cache where
//! it is kept under its digest, resumed from where a broken download
//! stopped, and never used before it checks out.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server could not be reached, or the transfer broke (after retries).
    #[error("{url}")]
    Transport {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error.
    #[error("{url}: answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// What arrived is not what the signed index says.
    #[error(
        "{url}: got {actual_size} bytes with sha256 {actual}, expected {expected_size} bytes with sha256 {expected}"
    )]
    Mismatch {
        /// The URL.
        url: String,
        /// The expected size.
        expected_size: u64,
        /// The expected digest.
        expected: String,
        /// What arrived.
        actual_size: u64,
        /// Its digest.
        actual: String,
    },
    /// The transfer ended before the signed size was reached (and retries did not help).
    #[error("{url}: the transfer ended after {got} of {expected} bytes")]
    Short {
        /// The URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Bytes the signed index names.
        expected: u64,
    },
    /// No URL was given for the content.
    #[error("no URL to fetch sha256 {sha256} from")]
    NoUrl {
        /// The content wanted.
        sha256: String,
    },
    /// More arrived than the signed size allows.
    #[error("{url}: more than the {limit} bytes allowed")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A local file of the cache or a file:// archive failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Fetches over HTTP(S) or from `file://` archives, with a content cache.
pub struct Fetcher {
    agent: ureq::Agent,
    cache: PathBuf,
    retries: u32,
}

/// Largest file fetched without a signed size (Release files).
const MAX_UNSIGNED_BYTES: u64 = 64 << 20;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FetchError {
    let path = path.to_path_buf();
    move |source| FetchError::Io {
        action,
        path,
        source,
    }
}

fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

impl Fetcher {
    /// A fetcher caching content under `cache`, retrying failed transfers `retries` times.
    pub fn new(cache: PathBuf, retries: u32) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .max_redirects(5)
            .build()
            .new_agent();
        Self {
            agent,
            cache,
            retries,
        }
    }

    /// The cache directory.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    fn local(url: &str) -> Option<PathBuf> {
        url.strip_prefix("file://").map(PathBuf::from)
    }

    /// A small file, whole; `None` when the server says it is not there.
    pub fn get(&self, url: &str) -> Result<Option<Vec<u8>>, FetchError> {
        if let Some(path) = Self::local(url) {
            return match fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(io_error("reading", &path)(error)),
            };
        }
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
            }
            match self.agent.get(url).call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status == 404 {
                        return Ok(None);
                    }
                    if status >= 500 || status == 429 {
                        last = Some(FetchError::Status {
                            url: url.to_owned(),
                            status,
                        });
                        continue;
                    }
                    if status != 200 {
                        return Err(FetchError::Status {
                            url: url.to_owned(),
                            status,
                        });
                    }
                    let mut bytes = Vec::new();
                    match response
                        .body_mut()
                        .as_reader()
                        .take(MAX_UNSIGNED_BYTES + 1)
                        .read_to_end(&mut bytes)
                    {
                        Ok(_) if bytes.len() as u64 > MAX_UNSIGNED_BYTES => {
                            return Err(FetchError::TooLarge {
                                url: url.to_owned(),
                                limit: MAX_UNSIGNED_BYTES,
                            });
                        }
                        Ok(_) => return Ok(Some(bytes)),
                        Err(error) => {
                            last = Some(FetchError::Transport {
                                url: url.to_owned(),
                                source: Box::new(ureq::Error::Io(error)),
                            });
                        }
                    }
                }
                Err(error) => {
                    last = Some(FetchError::Transport {
                        url: url.to_owned(),
                        source: Box::new(error),
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| FetchError::Status {
            url: url.to_owned(),
            status: 0,
        }))
    }

    /// Where content with this digest is kept.
    pub fn cached_path(&self, sha256: &str) -> PathBuf {
        self.cache.join("sha256").join(sha256)
    }

    /// The cached content with this size and SHA-256, checked again as it is read.
    pub fn cached(&self, size: u64, sha256: &str) -> Option<PathBuf> {
        let target = self.cached_path(sha256);
        match sha256_file(&target) {
            Ok((found_size, found)) if found_size == size && found == sha256 => Some(target),
            _ => None,
        }
    }

    /// Keeps `bytes`, already checked against `sha256`, in the cache.
    pub fn store(&self, sha256: &str, bytes: &[u8]) -> Result<PathBuf, FetchError> {
        let partial_dir = self.cache.join("partial");
        fs::create_dir_all(&partial_dir).map_err(io_error("creating", &partial_dir))?;
        let sha_dir = self.cache.join("sha256");
        fs::create_dir_all(&sha_dir).map_err(io_error("creating", &sha_dir))?;
        let partial = partial_dir.join(format!("{sha256}.stored"));
        fs::write(&partial, bytes).map_err(io_error("writing", &partial))?;
        let target = self.cached_path(sha256);
        fs::rename(&partial, &target).map_err(io_error("storing", &target))?;
        Ok(target)
    }

    /// The content at one of `urls` with this size and SHA-256, from the
    /// cache when it is there; a broken transfer resumes where it stopped.
    pub fn get_verified(
        &self,
        urls: &[String],
        size: u64,
        sha256: &str,
    ) -> Result<PathBuf, FetchError> {
        if let Some(target) = self.cached(size, sha256) {
            return Ok(target);
        }
        let target = self.cached_path(sha256);
        let partial_dir = self.cache.join("partial");
        fs::create_dir_all(&partial_dir).map_err(io_error("creating", &partial_dir))?;
        fs::create_dir_all(self.cache.join("sha256"))
            .map_err(io_error("creating", &self.cache.join("sha256")))?;
        let partial = partial_dir.join(sha256);
        let mut last = None;
        for url in urls {
            match self.download(url, &partial, size) {
                Ok(()) => {}
                Err(error) => {
                    last = Some(error);
                    continue;
                }
            }
            let (found_size, found) =
                sha256_file(&partial).map_err(io_error("reading", &partial))?;
            if found_size != size || found != sha256 {
                let _ = fs::remove_file(&partial);
                last = Some(FetchError::Mismatch {
                    url: url.clone(),
                    expected_size: size,
                    expected: sha256.to_owned(),
                    actual_size: found_size,
                    actual: found,
                });
                continue;
            }
            fs::rename(&partial, &target).map_err(io_error("storing", &target))?;
            return Ok(target);
        }
        Err(last.unwrap_or(FetchError::NoUrl {
            sha256: sha256.to_owned(),
        }))
    }

    /// Appends what is missing of `url` to `partial`, resuming with a Range request.
    fn download(&self, url: &str, partial: &Path, size: u64) -> Result<(), FetchError> {
        if let Some(path) = Self::local(url) {
            let mut source = File::open(&path).map_err(io_error("reading", &path))?;
            let mut target = File::create(partial).map_err(io_error("creating", partial))?;
            io::copy(&mut (&mut source).take(size + 1), &mut target)
                .map_err(io_error("copying", &path))?;
            return Ok(());
        }
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
            }
            let have = fs::metadata(partial).map_or(0, |metadata| metadata.len());
            if have > size {
                // Left over from an index with other contents: start again.
                fs::remove_file(partial).map_err(io_error("removing", partial))?;
                continue;
            }
            if have == size {
                return Ok(());
            }
            let mut request = self.agent.get(url);
            if have > 0 {
                request = request.header("Range", format!("bytes={have}-"));
            }
            let mut response = match request.call() {
                Ok(response) => response,
                Err(error) => {
                    last = Some(FetchError::Transport {
                        url: url.to_owned(),
                        source: Box::new(error),
                    });
                    continue;
                }
            };
            let status = response.status().as_u16();
            let append = match status {
                206 if have > 0 => true,
                200 => false,
                416 if have > 0 => {
                    // The file on the server changed under the partial copy.
                    fs::remove_file(partial).map_err(io_error("removing", partial))?;
                    last = Some(FetchError::Status {
                        url: url.to_owned(),
                        status,
                    });
                    continue;
                }
                500.. | 429 => {
                    last = Some(FetchError::Status {
                        url: url.to_owned(),
                        status,
                    });
                    continue;
                }
                _ => {
                    return Err(FetchError::Status {
                        url: url.to_owned(),
                        status,
                    });
                }
            };
            let mut file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(partial)
                .map_err(io_error("writing", partial))?;
            let already = if append { have } else { 0 };
            let limit = size.saturating_sub(already) + 1;
            let mut reader = response.body_mut().as_reader().take(limit);
            let mut buffer = vec![0u8; 64 << 10];
            let mut broke = false;
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(count) => file
                        .write_all(&buffer[..count])
                        .map_err(io_error("writing", partial))?,
                    Err(error) => {
                        // What arrived stays; the next attempt asks for the rest.
                        broke = true;
                        last = Some(FetchError::Transport {
                            url: url.to_owned(),
                            source: Box::new(ureq::Error::Io(error)),
                        });
                        break;
                    }
                }
            }
            file.sync_all().map_err(io_error("writing", partial))?;
            let now = fs::metadata(partial).map_or(0, |metadata| metadata.len());
            if now > size {
                return Err(FetchError::TooLarge {
                    url: url.to_owned(),
                    limit: size,
                });
            }
            if now == size {
                return Ok(());
            }
            if !broke {
                last = Some(FetchError::Short {
                    url: url.to_owned(),
                    got: now,
                    expected: size,
                });
            }
        }
        Err(last.unwrap_or_else(|| FetchError::Short {
            url: url.to_owned(),
            got: fs::metadata(partial).map_or(0, |metadata| metadata.len()),
            expected: size,
        }))
    }
}
