//! Real packets through the fabric: a listener in the destination's namespace, a client in
//! the source's, and the answer is whether the exchange completed — a TCP handshake, a UDP
//! datagram echoed back, an ICMP echo answered. Each needs the way there and the way back,
//! as the reachability engine's verdict does.

use crate::netns::in_netns;
use crate::plan::Names;
use kumori_net::reach::model::{Interface, Network, Owner, Protocol};
use kumori_net::reach::trace::Endpoint;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One question for the kernel.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The namespace the client runs in.
    pub from_ns: String,
    /// The namespace that listens (none: an address nothing in the fabric holds; nor needed
    /// for ICMP, which the kernel answers).
    pub to_ns: Option<String>,
    /// The address the client sends to.
    pub to_addr: Ipv4Addr,
    pub protocol: Protocol,
    pub port: u16,
}

/// The probe that asks the kernel the engine's question: `from` and `to` as the engine
/// takes them, mapped onto the fabric's namespaces. `None` when the source is not in the
/// fabric (an internet address without a test host).
pub fn probe_for(
    net: &Network,
    names: &Names<'_>,
    internet_hosts: &[Ipv4Addr],
    from: &Endpoint,
    to: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Option<Probe> {
    let ns_of = |e: &Interface| match &e.owner {
        Owner::NatGateway(n) if net.nat_gateways.contains_key(n) => names.nat(n),
        _ => names.interface(&e.id),
    };
    let (from_ns, source) = match from {
        Endpoint::Interface(id) => {
            let e = net.interfaces.get(id)?;
            (ns_of(e), Some(e))
        }
        Endpoint::Address(ip) if internet_hosts.contains(ip) => (names.internet_host(*ip), None),
        Endpoint::Address(_) => return None,
    };
    let (to_ns, to_addr) = match to {
        Endpoint::Interface(id) => {
            let d = net.interfaces.get(id)?;
            // As the engine addresses it: privately within a VPC or over an active peering,
            // at its public address otherwise.
            let private = source.is_some_and(|s| {
                s.vpc_id == d.vpc_id
                    || net
                        .peerings
                        .values()
                        .any(|p| p.active && p.other_end(&s.vpc_id) == Some(d.vpc_id.as_str()))
            });
            let addr = if private {
                d.primary_ip()
            } else {
                d.public_ip.unwrap_or(d.primary_ip())
            };
            (Some(ns_of(d)), addr)
        }
        Endpoint::Address(ip) => {
            let holder = if internet_hosts.contains(ip) {
                Some(names.internet_host(*ip))
            } else if let Some(d) = net.interface_with_public(*ip) {
                Some(ns_of(d))
            } else {
                // A private address: the interface holding it in the source's VPC or a
                // peer of it.
                net.interfaces
                    .values()
                    .find(|d| {
                        d.private_ips.contains(ip)
                            && source.is_some_and(|s| {
                                s.vpc_id == d.vpc_id
                                    || net.peerings.values().any(|p| {
                                        p.active
                                            && p.other_end(&s.vpc_id) == Some(d.vpc_id.as_str())
                                    })
                            })
                    })
                    .map(ns_of)
            };
            (holder, *ip)
        }
    };
    Some(Probe {
        from_ns,
        to_ns,
        to_addr,
        protocol,
        port,
    })
}

/// What the kernel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reached: bool,
    /// What the client saw: `connected`, `timed out`, `refused`, an error.
    pub detail: String,
}

/// Sends the probe's packets; `wait` bounds each exchange.
pub fn probe(p: &Probe, wait: Duration) -> Result<Outcome, String> {
    match p.protocol {
        Protocol::Icmp => icmp(p, wait),
        Protocol::Tcp => tcp(p, wait),
        Protocol::Udp => udp(p, wait),
    }
}

fn outcome(reached: bool, detail: impl Into<String>) -> Outcome {
    Outcome {
        reached,
        detail: detail.into(),
    }
}

fn tcp(p: &Probe, wait: Duration) -> Result<Outcome, String> {
    let port = p.port;
    let Some(to_ns) = p.to_ns.clone() else {
        return connect_only(p, wait);
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let deadline = wait + Duration::from_millis(200);
    let listener = {
        let ns = to_ns;
        std::thread::spawn(move || {
            in_netns(&ns, move || {
                let l = match TcpListener::bind(("0.0.0.0", port)) {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(true));
                        l
                    }
                    // Something there already listens (an instance's SSH server): the
                    // handshake with it is the answer.
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        let _ = ready_tx.send(Ok(false));
                        return Ok(true);
                    }
                    Err(e) => {
                        let e = format!("listen {port}: {e}");
                        let _ = ready_tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                let until = Instant::now() + deadline;
                while Instant::now() < until {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.write_all(b"k");
                            return Ok(true);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                Ok(false)
            })
        })
    };
    let ours = ready_rx
        .recv()
        .map_err(|_| "listener did not start".to_string())??;
    if !ours {
        let _ = listener.join();
        return connect_only(p, wait).map(|o| Outcome {
            detail: if o.reached {
                "connected to the service listening there".into()
            } else {
                o.detail
            },
            ..o
        });
    }
    let to = SocketAddr::from((p.to_addr, port));
    let client = in_netns(&p.from_ns, move || {
        Ok(match TcpStream::connect_timeout(&to, wait) {
            Ok(mut s) => {
                // The byte the listener writes proves the connection reached it (and not
                // some other listener on the way).
                let _ = s.set_read_timeout(Some(wait));
                let mut b = [0u8; 1];
                match s.read(&mut b) {
                    Ok(1) if b[0] == b'k' => outcome(true, "connected"),
                    _ => outcome(false, "connected, but not to the listener"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => outcome(false, "timed out"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                outcome(false, "refused")
            }
            Err(e) => outcome(false, e.to_string()),
        })
    })?;
    let accepted = listener
        .join()
        .map_err(|_| "listener panicked".to_string())??;
    Ok(if client.reached && !accepted {
        outcome(false, "connected, but the listener saw nothing")
    } else {
        client
    })
}

/// A TCP connect to an address no namespace of the fabric holds: only a timeout or an
/// error can come back, unless something unexpected answers.
fn connect_only(p: &Probe, wait: Duration) -> Result<Outcome, String> {
    let to = SocketAddr::from((p.to_addr, p.port));
    in_netns(&p.from_ns, move || {
        Ok(match TcpStream::connect_timeout(&to, wait) {
            Ok(_) => outcome(true, "connected"),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => outcome(false, "timed out"),
            Err(e) => outcome(false, e.to_string()),
        })
    })
}

fn udp(p: &Probe, wait: Duration) -> Result<Outcome, String> {
    let port = p.port;
    let Some(to_ns) = p.to_ns.clone() else {
        return Ok(outcome(false, "nothing holds the address"));
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let deadline = wait + Duration::from_millis(200);
    let echo = {
        let ns = to_ns;
        std::thread::spawn(move || {
            in_netns(&ns, move || {
                let s = match UdpSocket::bind(("0.0.0.0", port)) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let e = format!("bind {port}: {e}");
                        let _ = ready_tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                s.set_read_timeout(Some(deadline))
                    .map_err(|e| e.to_string())?;
                let mut b = [0u8; 64];
                if let Ok((n, from)) = s.recv_from(&mut b) {
                    let _ = s.send_to(&b[..n], from);
                }
                Ok(())
            })
        })
    };
    ready_rx
        .recv()
        .map_err(|_| "listener did not start".to_string())??;
    let to = SocketAddr::from((p.to_addr, port));
    let got = in_netns(&p.from_ns, move || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
        s.send_to(b"kumori-probe", to).map_err(|e| e.to_string())?;
        let mut b = [0u8; 64];
        Ok(match s.recv_from(&mut b) {
            Ok((n, _)) if &b[..n] == b"kumori-probe" => outcome(true, "echoed"),
            Ok(_) => outcome(false, "an unexpected answer"),
            Err(_) => outcome(false, "no answer"),
        })
    })?;
    let _ = echo.join();
    Ok(got)
}

fn icmp(p: &Probe, wait: Duration) -> Result<Outcome, String> {
    let to = p.to_addr.to_string();
    let secs = wait.as_secs_f64().max(0.2);
    in_netns(&p.from_ns, move || {
        let out = Command::new("ping")
            .args(["-n", "-c", "1", "-W", &format!("{secs:.1}"), &to])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("ping: {e} (Debian: apt-get install iputils-ping)"))?;
        Ok(if out.success() {
            outcome(true, "echo answered")
        } else {
            outcome(false, "no echo reply")
        })
    })
}
