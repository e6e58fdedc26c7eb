//! Kernel versions as text: the release string (`uname -r`) and the `minKernel` of a
//! seccomp profile's rules, read for the `major.minor` that interfaces are dated by.

/// `major.minor` of a release such as `6.18.0-1-amd64` or `6.9-rc1`; a missing minor
/// counts as 0. `None` when it does not start with a number.
pub fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut numbers = release.split(|c: char| !c.is_ascii_digit());
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn releases_parse() {
        assert_eq!(release_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(release_version("5.10.0"), Some((5, 10)));
        assert_eq!(release_version("6.9-rc1"), Some((6, 9)));
        assert_eq!(release_version("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(release_version("5"), Some((5, 0)));
        assert_eq!(release_version("garbage"), None);
        assert_eq!(release_version("x"), None);
        assert_eq!(release_version(""), None);
        assert_eq!(release_version("99999999999.1"), None);
    }

    proptest! {
        #[test]
        fn any_release_parses_or_is_refused(s in "\\PC{0,40}") {
            let _ = release_version(&s);
        }

        #[test]
        fn a_version_and_any_suffix_give_the_version(
            major in 0u32..1000, minor in 0u32..1000, suffix in "([-.+][a-z0-9.-]{0,12})?",
        ) {
            let release = format!("{major}.{minor}{suffix}");
            prop_assert_eq!(release_version(&release), Some((major, minor)));
        }
    }
}
