//! The kubelet's rule for a device plugin's resource name: an extended resource name
//! (`IsExtendedResourceName` of Kubernetes' core helpers), checked before registering
//! so that a bad `--resource-name` fails at start rather than at every registration.

/// Ok when `name` is `domain/name`, the domain not Kubernetes' own, and
/// `requests.<name>` (how quotas name it) is a valid qualified name.
pub fn check_resource_name(name: &str) -> Result<(), String> {
    let Some((prefix, rest)) = name.split_once('/') else {
        return Err(format!(
            "{name:?} has no domain: an extended resource is domain/name"
        ));
    };
    if name.contains("kubernetes.io/") {
        return Err(format!("{name:?} is in Kubernetes' own namespace"));
    }
    if name.starts_with("requests.") {
        return Err(format!(
            "{name:?} starts with requests., which quotas reserve"
        ));
    }
    let quota_prefix = format!("requests.{prefix}");
    if !dns1123_subdomain(&quota_prefix) {
        return Err(format!(
            "{prefix:?} is not a DNS subdomain (lowercase letters, digits, '-' and '.')"
        ));
    }
    if !qualified_name_part(rest) {
        return Err(format!(
            "{rest:?} is not a valid name (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

fn qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || b"-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_resource_names() {
        for ok in ["lxcfs-rs.io/proc", "example.com/a_b.c", "x/Y"] {
            assert!(check_resource_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "proc",
            "kubernetes.io/proc",
            "node.kubernetes.io/proc",
            "requests.example.com/x",
            "Example.com/x",
            "example.com/",
            "example.com/-x",
            "ex_ample.com/x",
            "/x",
        ] {
            assert!(check_resource_name(bad).is_err(), "{bad}");
        }
        assert!(check_resource_name(&format!("a.io/{}", "x".repeat(64))).is_err());
    }

    proptest::proptest! {
        /// Any string gets an answer, and an accepted one has the shape the kubelet
        /// needs: one domain, a name, no Kubernetes namespace.
        #[test]
        fn any_name_gets_an_answer(name in ".{0,80}") {
            if check_resource_name(&name).is_ok() {
                let (domain, rest) = name.split_once('/').unwrap_or_default();
                proptest::prop_assert!(!domain.is_empty() && !rest.is_empty());
                proptest::prop_assert!(!rest.contains('/'));
                proptest::prop_assert!(!name.contains("kubernetes.io/"));
            }
        }

        #[test]
        fn names_made_by_the_rules_are_accepted(
            domain in "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}",
            rest in "[A-Za-z0-9]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9])?",
        ) {
            let name = format!("{domain}/{rest}");
            proptest::prop_assume!(!name.contains("kubernetes.io/") && !name.starts_with("requests."));
            proptest::prop_assert!(check_resource_name(&name).is_ok(), "{}", name);
        }
    }
}
