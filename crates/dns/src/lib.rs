//! The Amazon-provided DNS server of a VPC, as its instances reach it at the VPC's base
//! address + 2: it answers the private host names EC2 gives addresses in the VPC
//! (`ip-10-0-1-4.ec2.internal` in us-east-1, `ip-10-0-1-4.<region>.compute.internal`
//! elsewhere) and their reverse (PTR) names. There is no internet to recurse to, so any
//! other name is NXDOMAIN at once: a program probing the resolver (cloud-init does, at
//! boot) learns that without waiting for timeouts.
//!
//! Pure: bytes of a query in, bytes of the answer out. The data plane owns the sockets.
//! Private hosted zones (Route 53) are the next thing this answers.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// How long answers may be cached (Route 53 Resolver's private names use 60 s).
const TTL: u32 = 60;

/// The private DNS domain of a region, as EC2 names hosts in it.
pub fn domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".into()
    } else {
        format!("{region}.compute.internal")
    }
}

/// The private DNS name EC2 gives an address in `region`.
pub fn host_name(ip: Ipv4Addr, region: &str) -> String {
    format!("ip-{}.{}", ip.to_string().replace('.', "-"), domain(region))
}

/// What one VPC's resolver knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub cidrs: Vec<Ipv4Net>,
    pub region: String,
}

/// What a name is, to this resolver.
#[derive(Debug, PartialEq)]
enum Found {
    Address(Ipv4Addr),
    Pointer(String),
    /// A name outside what the resolver knows.
    Nothing,
}

impl Vpc {
    fn inside(&self, ip: Ipv4Addr) -> bool {
        self.cidrs.iter().any(|c| c.contains(&ip))
    }

    fn lookup(&self, name: &str) -> Found {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(host) = name.strip_suffix(&format!(".{}", domain(&self.region)))
            && let Some(dashed) = host.strip_prefix("ip-")
            && let Ok(ip) = dashed.replace('-', ".").parse::<Ipv4Addr>()
            && self.inside(ip)
        {
            return Found::Address(ip);
        }
        if let Some(rev) = name.strip_suffix(".in-addr.arpa") {
            let mut octets: Vec<&str> = rev.split('.').collect();
            octets.reverse();
            if let Ok(ip) = octets.join(".").parse::<Ipv4Addr>()
                && self.inside(ip)
            {
                return Found::Pointer(host_name(ip, &self.region));
            }
        }
        Found::Nothing
    }

    /// The answer to a DNS query, or `None` for what is not a query (dropped, as servers do).
    pub fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = Message::from_vec(query).ok()?;
        if q.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut r = Message::response(q.metadata.id, q.metadata.op_code);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.metadata.recursion_available = true;
        let Some(question) = q.queries.first() else {
            r.metadata.response_code = ResponseCode::FormErr;
            return r.to_vec().ok();
        };
        r.add_query(question.clone());
        let name: &Name = question.name();
        match (self.lookup(&name.to_ascii()), question.query_type()) {
            (Found::Address(ip), RecordType::A | RecordType::ANY) => {
                r.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
            }
            (Found::Pointer(host), RecordType::PTR | RecordType::ANY) => {
                let target = Name::from_ascii(format!("{host}.")).ok()?;
                r.add_answer(Record::from_rdata(
                    name.clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
            }
            // The name exists, without records of that type: an empty NOERROR answer.
            (Found::Address(_) | Found::Pointer(_), _) => {}
            (Found::Nothing, _) => r.metadata.response_code = ResponseCode::NXDomain,
        }
        r.to_vec().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn vpc(region: &str) -> Vpc {
        Vpc {
            cidrs: vec!["10.0.0.0/16".parse().unwrap()],
            region: region.into(),
        }
    }

    fn ask(v: &Vpc, name: &str, t: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.id = 7;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        Message::from_vec(&v.answer(&q.to_vec().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn private_names_resolve_to_their_address_and_back() {
        let v = vpc("us-east-1");
        let a = ask(&v, "ip-10-0-1-4.ec2.internal.", RecordType::A);
        assert_eq!(a.metadata.id, 7);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a.answers[0].data, RData::A(A(Ipv4Addr::new(10, 0, 1, 4))));
        let ptr = ask(&v, "4.1.0.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(
            ptr.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("ip-10-0-1-4.ec2.internal.").unwrap()))
        );
        let west = ask(
            &vpc("eu-west-1"),
            "IP-10-0-1-4.eu-west-1.compute.internal.",
            RecordType::A,
        );
        assert_eq!(west.answers.len(), 1);
    }

    #[test]
    fn other_names_are_nxdomain_at_once_and_other_types_empty() {
        let v = vpc("us-east-1");
        let none = ask(&v, "does-not-exist.example.com.", RecordType::A);
        assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
        // Outside the VPC's ranges, a well-formed name is not the VPC's to answer.
        let outside = ask(&v, "ip-10-1-1-4.ec2.internal.", RecordType::A);
        assert_eq!(outside.metadata.response_code, ResponseCode::NXDomain);
        let aaaa = ask(&v, "ip-10-0-1-4.ec2.internal.", RecordType::AAAA);
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
    }
}
