//! EC2's network analysis: the region as `kumori-net` sees it (`reach`), Reachability
//! Analyzer's paths and analyses, and Network Access Analyzer's scopes.

#[allow(unused_imports)]
use super::*;

pub mod access_scopes;
pub mod network_insights;
pub mod reach;
