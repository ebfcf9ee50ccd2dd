//! Tributary's control plane. The controllers arrive with their issues; what every one of them
//! needs first is here: the CRDs installed in the cluster and established.

pub mod crds;
