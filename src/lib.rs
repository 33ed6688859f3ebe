//! kube-chaos runtime
