//! A minimal HTTP/1.1 server on std only: answers every request with a line
//! naming itself and the uid it runs as, so tests can check both.
#![allow(clippy::print_stderr, reason = "a standalone example program")]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn current_uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let address = format!("0.0.0.0:{port}");
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("hello: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    eprintln!("hello: listening on {address}");
    for stream in listener.incoming().flatten() {
        let mut reader = BufReader::new(&stream);
        let mut line = String::new();
        // Read the request head; the body is ignored.
        while reader.read_line(&mut line).is_ok_and(|count| count > 2) {
            line.clear();
        }
        let body = format!("hello from sealcraft (uid {})\n", current_uid());
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = (&stream).write_all(response.as_bytes());
    }
}
