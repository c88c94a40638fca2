//! The TCP baseline of the WAN bench: one file over one TCP connection, with the congestion
//! control chosen on the socket (a network namespace cannot change the host's default).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// Send a file over one TCP connection and time it, or receive one.
///
///   tcp-bulk recv --listen 10.0.0.2:5001 -o out.bin
///   tcp-bulk send --to 10.0.0.2:5001 --cc cubic in.bin
///
/// The sender's clock runs from the connection's establishment until the receiver closed
/// after the last byte (so it covers delivery, like dcsend's transfer clock from channel open
/// to the final ack). Each side prints one JSON line on stdout when done.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Connect, send FILE, close our side, wait for the receiver to close.
    Send {
        file: PathBuf,
        #[arg(long)]
        to: SocketAddr,
        /// Congestion control set on the socket (TCP_CONGESTION), e.g. cubic, reno, bbr.
        #[arg(long, default_value = "cubic")]
        cc: String,
        /// Keep trying to connect this long (the receiver may still be starting), seconds.
        #[arg(long, default_value_t = 10.0)]
        connect_timeout: f64,
    },
    /// Accept one connection, write what arrives to OUT, close when the sender closes.
    Recv {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(short, long)]
        out: PathBuf,
        /// Congestion control of the receiving socket (it sends only ACKs).
        #[arg(long, default_value = "cubic")]
        cc: String,
    },
}

const CHUNK: usize = 1 << 20;

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Send { file, to, cc, connect_timeout } => {
            send(&file, to, &cc, Duration::from_secs_f64(connect_timeout))
        }
        Cmd::Recv { listen, out, cc } => recv(listen, &out, &cc),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-bulk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn send(file: &PathBuf, to: SocketAddr, cc: &str, patience: Duration) -> io::Result<()> {
    let mut src = File::open(file)?;
    let deadline = Instant::now() + patience;
    let mut sock = loop {
        match TcpStream::connect(to) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline && e.kind() == io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("connect {to}: {e}"))),
        }
    };
    set_congestion(&sock, cc)?;
    let start = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    sock.shutdown(Shutdown::Write)?;
    // The receiver closes once it has read everything: our read then sees the end.
    let extra = sock.read(&mut buf)?;
    let seconds = start.elapsed().as_secs_f64();
    if extra != 0 {
        return Err(io::Error::other("the receiver sent data"));
    }
    let info = tcp_info(&sock)?;
    println!(
        "{{\"bytes\":{bytes},\"seconds\":{seconds:.6},\"cc\":\"{}\",\"retransmits\":{},\
         \"rtt_ms\":{:.3}}}",
        congestion(&sock)?,
        info.tcpi_total_retrans,
        info.tcpi_rtt as f64 / 1e3
    );
    Ok(())
}

fn recv(listen: SocketAddr, out: &PathBuf, cc: &str) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    eprintln!("tcp-bulk: listening on {}", listener.local_addr()?);
    let (mut sock, _) = listener.accept()?;
    set_congestion(&sock, cc)?;
    let start = Instant::now();
    let mut dst = File::create(out)?;
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    dst.flush()?;
    drop(sock);
    println!("{{\"bytes\":{bytes},\"seconds\":{:.6}}}", start.elapsed().as_secs_f64());
    Ok(())
}

fn set_congestion(sock: &TcpStream, cc: &str) -> io::Result<()> {
    // SAFETY: the name is valid for its length.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("TCP_CONGESTION {cc}: {e}")));
    }
    let now = congestion(sock)?;
    if now != cc {
        return Err(io::Error::other(format!("asked for congestion control {cc}, got {now}")));
    }
    Ok(())
}

fn congestion(sock: &TcpStream) -> io::Result<String> {
    let mut name = [0u8; 16]; // TCP_CA_NAME_MAX
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: the buffer is valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let name = &name[..len as usize];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..end]).into_owned())
}

fn tcp_info(sock: &TcpStream) -> io::Result<libc::tcp_info> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}
