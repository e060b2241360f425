//! Instances that really run. An image family's root filesystem is built once from
//! Debian's packages (`rootfs`), and each instance is an OCI container started by runc
//! (`container`) on an overlay of it, inside its primary interface's network namespace (the
//! data plane's), with its own mount, PID, UTS and IPC namespaces and a memory limit from
//! its instance type. What runs inside is tini, then kumori's init: host keys made at first
//! boot and printed to the console, the key pair's public key for the image's default user,
//! user data once, then the SSH server. Attached EBS volumes are loop devices over sparse
//! files (`volume`), shown inside at their device names.
//!
//! Why runc and not crun: crun 1.8.1 (Debian 12) refuses hosts whose cgroup layout is hybrid
//! (v1 controllers with a v2 `unified` mount holding `hugetlb`), as these are, unless the
//! host mounts `hugetlb` as a v1 hierarchy; runc 1.1 treats such a host as v1. Both are
//! Debian's packages.

pub mod container;
pub mod hostkeys;
pub mod rootfs;
pub mod volume;
