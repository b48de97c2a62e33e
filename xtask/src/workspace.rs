//! What the workspace holds, read from `cargo metadata`.

use serde_json::Value;

use crate::Result;
use crate::shell::{cargo, output};

/// Crates whose tests are not part of `cargo xtask ci` (their benches pull in peers).
const NOT_TESTED: &[&str] = &["aegis-bench"];

/// One workspace member.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) publishable: bool,
    pub(crate) is_library: bool,
    /// Workspace members this one depends on (normal and build dependencies).
    pub(crate) internal_deps: Vec<String>,
    /// Manifest fields crates.io needs that this crate lacks.
    pub(crate) missing_metadata: Vec<&'static str>,
}

pub(crate) fn members() -> Result<Vec<Member>> {
    let json =
        output(cargo().args(["metadata", "--format-version", "1", "--no-deps", "--locked"]))?;
    let metadata: Value =
        serde_json::from_str(&json).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut members = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        // `publish = false` shows up as an empty registry list.
        let publishable = !package["publish"].as_array().is_some_and(Vec::is_empty);
        let is_library = package["targets"].as_array().is_some_and(|targets| {
            targets.iter().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
        });
        let internal_deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(d))
            .map(str::to_owned)
            .collect();
        let missing_metadata = ["description", "license", "repository", "rust_version"]
            .into_iter()
            .filter(|field| package[*field].is_null())
            .collect();
        members.push(Member {
            name,
            publishable,
            is_library,
            internal_deps,
            missing_metadata,
        });
    }
    Ok(members)
}

/// The members of [`NOT_TESTED`] that exist, to pass as `--exclude`.
pub(crate) fn excluded_from_tests() -> Result<Vec<String>> {
    Ok(members()?
        .into_iter()
        .map(|m| m.name)
        .filter(|name| NOT_TESTED.contains(&name.as_str()))
        .collect())
}

pub(crate) fn has_library_members() -> Result<bool> {
    Ok(members()?
        .iter()
        .any(|m| m.is_library && !NOT_TESTED.contains(&m.name.as_str())))
}

/// Members sorted so that every crate comes after the crates it depends on.
pub(crate) fn in_dependency_order(mut members: Vec<Member>) -> Result<Vec<Member>> {
    let mut ordered: Vec<Member> = Vec::with_capacity(members.len());
    while !members.is_empty() {
        let ready = members.iter().position(|m| {
            m.internal_deps
                .iter()
                .all(|d| ordered.iter().any(|o| &o.name == d))
        });
        let Some(ready) = ready else {
            let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            return Err(format!("dependency cycle among {names:?}"));
        };
        ordered.push(members.remove(ready));
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::{Member, in_dependency_order};

    fn member(name: &str, deps: &[&str]) -> Member {
        Member {
            name: name.to_owned(),
            publishable: true,
            is_library: true,
            internal_deps: deps.iter().map(|d| (*d).to_owned()).collect(),
            missing_metadata: Vec::new(),
        }
    }

    #[test]
    fn dependencies_come_first() {
        let members = vec![
            member("facade", &["crdt", "clock"]),
            member("crdt", &["clock"]),
            member("clock", &[]),
        ];
        let order: Vec<String> = in_dependency_order(members)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(order, ["clock", "crdt", "facade"]);
    }

    #[test]
    fn cycles_are_reported() {
        let members = vec![member("a", &["b"]), member("b", &["a"])];
        let err = in_dependency_order(members).err().unwrap();
        assert!(err.contains("cycle"), "{err}");
    }
}
