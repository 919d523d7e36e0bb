//! Consumer groups inside one process: members share the partitions of the topics they subscribe
//! to (range assignment, recomputed when a member joins or leaves); positions start from the
//! committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The partitions of one member: (topic, partition).
pub type Assignment = Vec<(Arc<str>, u32)>;

#[derive(Debug, Default)]
struct Group {
    generation: u64,
    /// member id → subscribed topics with their partition counts.
    members: BTreeMap<String, Vec<(Arc<str>, u32)>>,
    assignment: HashMap<String, Assignment>,
}

impl Group {
    /// Range assignment per topic: the sorted members subscribed to a topic get contiguous ranges.
    fn rebalance(&mut self) {
        self.generation += 1;
        self.assignment = self.members.keys().map(|m| (m.clone(), Vec::new())).collect();
        let mut topics: BTreeMap<Arc<str>, u32> = BTreeMap::new();
        for subs in self.members.values() {
            for (t, n) in subs {
                topics.insert(t.clone(), *n);
            }
        }
        for (topic, partitions) in topics {
            let subscribers: Vec<&String> =
                self.members.iter().filter(|(_, s)| s.iter().any(|(t, _)| *t == topic)).map(|(m, _)| m).collect();
            let n = subscribers.len() as u32;
            let (per, extra) = (partitions / n, partitions % n);
            let mut next = 0;
            for (i, m) in subscribers.iter().enumerate() {
                let take = per + u32::from((i as u32) < extra);
                let owned = self.assignment.get_mut(*m).expect("every member has an entry");
                owned.extend((next..next + take).map(|p| (topic.clone(), p)));
                next += take;
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
}

impl Coordinator {
    /// Adds a member and rebalances; returns the new member id.
    pub fn join(&self, group: &str, topics: Vec<(Arc<str>, u32)>) -> String {
        let member = format!("{group}-{}", uuid_like());
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let g = groups.entry(group.to_owned()).or_default();
        g.members.insert(member.clone(), topics);
        g.rebalance();
        member
    }

    pub fn leave(&self, group: &str, member: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = groups.get_mut(group) {
            if g.members.remove(member).is_some() {
                g.rebalance();
            }
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
    }

    /// The member's current generation and partitions.
    pub fn assignment(&self, group: &str, member: &str) -> (u64, Assignment) {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .get(group)
            .map(|g| (g.generation, g.assignment.get(member).cloned().unwrap_or_default()))
            .unwrap_or_default()
    }

    /// Groups with members now.
    pub fn active_groups(&self) -> Vec<String> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Topics any member of `group` subscribes to.
    pub fn subscribed_topics(&self, group: &str) -> Vec<Arc<str>> {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Arc<str>> = groups
            .get(group)
            .map(|g| g.members.values().flatten().map(|(t, _)| t.clone()).collect())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_splits_and_rebalances() {
        let c = Coordinator::default();
        let t: Arc<str> = "t".into();
        let a = c.join("g", vec![(t.clone(), 3)]);
        assert_eq!(c.assignment("g", &a).1.len(), 3);
        let b = c.join("g", vec![(t.clone(), 3)]);
        let (ga, pa) = c.assignment("g", &a);
        let (gb, pb) = c.assignment("g", &b);
        assert_eq!(ga, gb);
        assert_eq!(pa.len() + pb.len(), 3);
        assert!(pa.iter().all(|p| !pb.contains(p)), "no partition is owned twice");
        c.leave("g", &a);
        assert_eq!(c.assignment("g", &b).1.len(), 3, "the remaining member takes over");
    }
}
