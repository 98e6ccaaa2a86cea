//! Name resolution for plugins: address literals (IPv6 with a scope such
//! as `fe80::1%eth0`) without any lookup; names through the system resolver
//! (`getaddrinfo`), every address, IPv4 first, as icmplib orders them.

use std::net::{IpAddr, Ipv6Addr};

use crate::icmp::{Address, Family};
use crate::sys::socket::interface_index;

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Parses an address literal; `Ok(None)` when `name` is not one.
pub fn literal(name: &str) -> Result<Option<Address>, LookupError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(Some(Address::new(ip)));
    }
    let Some((ip, scope)) = name.split_once('%') else {
        return Ok(None);
    };
    let Ok(ip) = ip.parse::<Ipv6Addr>() else {
        return Ok(None);
    };
    let scope_id = match scope.parse::<u32>() {
        Ok(index) => index,
        Err(_) => interface_index(scope).map_err(|e| LookupError(format!("{name}: {e}")))?,
    };
    Ok(Some(Address {
        ip: ip.into(),
        scope_id,
    }))
}

/// Resolves `name`; `family` keeps one family only.
pub async fn resolve(name: &str, family: Option<Family>) -> Result<Vec<Address>, LookupError> {
    let wanted = |a: &Address| family.is_none_or(|f| a.family() == f);
    if let Some(address) = literal(name)? {
        if !wanted(&address) {
            let f = family.map_or(String::new(), |f| f.to_string());
            return Err(LookupError(format!("{name} is not an {f} address")));
        }
        return Ok(vec![address]);
    }
    if name.is_empty() || name.len() > 253 {
        return Err(LookupError(format!("{name:?} is not a valid host name")));
    }
    let found = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| LookupError(format!("cannot resolve {name}: {e}")))?;
    let mut addresses: Vec<Address> = Vec::new();
    for a in found.map(Address::from_socket_addr) {
        if wanted(&a) && !addresses.contains(&a) {
            addresses.push(a);
        }
    }
    // Stable: keeps the resolver's order within each family.
    addresses.sort_by_key(|a| a.family() == Family::V6);
    if addresses.is_empty() {
        let what = family.map_or("address".to_owned(), |f| format!("{f} address"));
        return Err(LookupError(format!("cannot resolve {name}: no {what}")));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_lookup() {
        let a = literal("192.0.2.1").unwrap().unwrap();
        assert_eq!(a.family(), Family::V4);
        let b = literal("fe80::1%1").unwrap().unwrap();
        assert_eq!(b.scope_id, 1);
        let lo = literal("fe80::1%lo").unwrap().unwrap();
        assert_eq!(lo.scope_id, interface_index("lo").unwrap());
        assert!(literal("fe80::1%no-such-if0").is_err());
        assert_eq!(literal("example.org").unwrap(), None);
    }

    #[tokio::test]
    async fn family_filter_on_literals() {
        assert!(resolve("::1", Some(Family::V4)).await.is_err());
        assert_eq!(resolve("::1", Some(Family::V6)).await.unwrap().len(), 1);
        assert!(resolve("", None).await.is_err());
    }
}
