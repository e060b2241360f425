//! EC2 compute: instances and what they launch from and with — images, launch templates,
//! volumes and snapshots, key pairs, instance types, placement groups, instance profiles.

#[allow(unused_imports)]
use super::*;

pub mod images;
pub mod instance_types;
pub mod instances;
pub mod keypairs;
pub mod launch_templates;
pub mod placement_groups;
pub mod profile_associations;
pub mod snapshots;
pub mod volumes;
