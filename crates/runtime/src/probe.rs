//! Readiness probes from inside a container's network namespace: a thread
//! of ours joins the namespace (only that thread moves), connects to the
//! container's loopback and reports what it found, so a service is tested
//! without sharing the host's network.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// What a probe asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to this port on loopback is accepted.
    Tcp {
        /// The port.
        port: u16,
    },
    /// An HTTP GET of `path` on loopback answers with a status.
    Http {
        /// The port.
        port: u16,
        /// The request path.
        path: String,
    },
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// Nothing accepted the connection (or the namespace could not be joined).
    Refused(String),
    /// The port accepted a connection.
    Connected,
    /// The HTTP status line's code.
    Status(u16),
}

/// Runs `probe` inside the network namespace of the host process `pid`.
pub fn probe_in(pid: u32, probe: &Probe, timeout: Duration) -> ProbeAnswer {
    let namespace = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let probe = probe.clone();
    let joined = std::thread::spawn(move || -> io::Result<ProbeAnswer> {
        let file = File::open(&namespace)?;
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(LinkNameSpaceType::Network),
        )?;
        Ok(ask(&probe, timeout))
    })
    .join();
    match joined {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => ProbeAnswer::Refused(format!("joining the network namespace: {error}")),
        Err(_) => ProbeAnswer::Refused("the probe thread panicked".to_owned()),
    }
}

fn ask(probe: &Probe, timeout: Duration) -> ProbeAnswer {
    let port = match probe {
        Probe::Tcp { port } | Probe::Http { port, .. } => *port,
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = match TcpStream::connect_timeout(&address, timeout) {
        Ok(stream) => stream,
        Err(error) => return ProbeAnswer::Refused(error.to_string()),
    };
    let Probe::Http { path, .. } = probe else {
        return ProbeAnswer::Connected;
    };
    match http_status(&mut stream, path, timeout) {
        Ok(Some(status)) => ProbeAnswer::Status(status),
        Ok(None) => ProbeAnswer::Refused("the answer was not HTTP".to_owned()),
        Err(error) => ProbeAnswer::Refused(error.to_string()),
    }
}

fn http_status(stream: &mut TcpStream, path: &str, timeout: Duration) -> io::Result<Option<u16>> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sealcraft-probe\r\nConnection: close\r\n\r\n"
    )?;
    // The status line is all a probe needs: read until its end (or 1 KiB).
    let mut head = Vec::new();
    let mut byte = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let read = stream.read(&mut byte)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&byte[..read]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code.parse().ok(),
        _ => None,
    };
    Ok(status)
}
