// The pod sandbox ("pause") process for the local test cluster's containerd;
// built statically by scripts/cluster/images.sh, no dependencies.
module sophia.local/tools/pause

go 1.24.0
