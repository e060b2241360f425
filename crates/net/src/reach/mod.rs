//! Reachability: who can reach whom in a snapshot of the VPC model, and exactly why not.
//!
//! - `model`: the snapshot (plain data, ids as AWS names them).
//! - `rules`: security groups, network ACLs and route tables, each deciding one packet.
//! - `audit`: exposures a reviewer would flag.
//! - `classes`: port spans over which no rule changes its mind, so one port stands for each.
//! - `trace`: the reference evaluator, which walks one concrete packet there and back and
//!   explains a drop with AWS's Reachability Analyzer codes.
//! - `engine`: every port of a protocol in one walk, as sets of ranges (`portset`);
//!   property-tested against `trace` over random networks.
//!
//! No I/O anywhere: the services layer builds a `Network` from stored resources.

pub mod audit;
pub mod classes;
pub mod engine;
pub mod index;
pub mod model;
pub mod portset;
pub mod random;
pub mod rules;
pub mod trace;

#[cfg(test)]
mod engine_vs_reference;
#[cfg(test)]
mod journeys;
