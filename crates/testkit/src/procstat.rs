//! `/proc/stat` as lxcfs-rs renders it (ten columns; `cpu` and two spaces, then one line
//! per visible CPU), parsed strictly: a malformed rendering fails the test that read it.

/// The `cpu` and `cpuN` lines of a `/proc/stat`.
#[derive(Debug, Clone)]
pub struct Stat {
    pub total: Vec<u64>,
    pub cpus: Vec<(u32, Vec<u64>)>,
    pub text: String,
}

impl Stat {
    pub fn parse(text: &str) -> Stat {
        let mut total = None;
        let mut cpus = Vec::new();
        for line in text.lines().filter(|l| l.starts_with("cpu")) {
            let mut f = line.split_ascii_whitespace();
            let label = f.next().unwrap();
            let vals: Vec<u64> = f.map(|v| v.parse().unwrap()).collect();
            assert_eq!(vals.len(), 10, "ten columns: {line:?}");
            if label == "cpu" {
                assert!(line.starts_with("cpu  "), "two spaces after cpu: {line:?}");
                assert!(total.is_none(), "one cpu line");
                total = Some(vals);
            } else {
                cpus.push((label[3..].parse().unwrap(), vals));
            }
        }
        let s = Stat {
            total: total.expect("a cpu line"),
            cpus,
            text: text.to_string(),
        };
        s.check_sum();
        s
    }

    pub fn check_sum(&self) {
        let mut sum = [0u64; 10];
        for (_, v) in &self.cpus {
            for (s, x) in sum.iter_mut().zip(v) {
                *s += x;
            }
        }
        assert_eq!(
            self.total, sum,
            "cpu line is the sum of the cpuN lines:\n{}",
            self.text
        );
    }

    pub fn ids(&self) -> Vec<u32> {
        self.cpus.iter().map(|(id, _)| *id).collect()
    }

    pub fn cpu(&self, id: u32) -> &[u64] {
        self.cpus
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_else(|| panic!("no cpu{id} line:\n{}", self.text))
    }

    pub fn line(&self, id: u32) -> String {
        let v = self.cpu(id);
        format!(
            "cpu{id} {}",
            v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
        )
    }

    pub fn value(&self, key: &str) -> u64 {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} line:\n{}", self.text))
    }

    /// user + system of the `cpu` line.
    pub fn busy(&self) -> u64 {
        self.total[0] + self.total[2]
    }

    pub fn idle(&self) -> u64 {
        self.total[3]
    }
}

/// Every counter of `after` is at least the one of `before`: the `cpu` line, and every
/// `cpuN` line present in both.
pub fn assert_monotonic(before: &Stat, after: &Stat) {
    for (i, (a, b)) in before.total.iter().zip(&after.total).enumerate() {
        assert!(
            b >= a,
            "cpu column {i} went from {a} to {b}\nbefore:\n{}\nafter:\n{}",
            before.text,
            after.text
        );
    }
    for (id, prev) in &before.cpus {
        if let Some((_, now)) = after.cpus.iter().find(|(i, _)| i == id) {
            for (i, (a, b)) in prev.iter().zip(now).enumerate() {
                assert!(
                    b >= a,
                    "cpu{id} column {i} went from {a} to {b}\nbefore:\n{}\nafter:\n{}",
                    before.text,
                    after.text
                );
            }
        }
    }
}
