package main

import (
	"slices"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func TestExecArguments(t *testing.T) {
	h := newLanguageHost("/bin/exec", "127.0.0.1:1", "")
	got := h.execArguments(&pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:2", Project: "p", Stack: "s", Pwd: "/w", DryRun: true,
		Parallel: 8, Organization: "o", Args: []string{"a"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: "/w"},
	})
	want := []string{
		"--monitor", "127.0.0.1:2", "--engine", "127.0.0.1:1", "--project", "p", "--stack", "s",
		"--pwd", "/w", "--dry_run", "true", "--parallel", "8", "--organization", "o",
		"--root_directory", "/w", ".", "a",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestPackageDependency(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		pkg  installedPackage
		want string // "name version", "" for no plugin
	}{
		{installedPackage{"pulumi-kubernetes", "4.25.0", str(`{"resource": true, "name": "kubernetes", "version": "4.25.0"}`)}, "kubernetes v4.25.0"},
		{installedPackage{"pulumi-random", "4.21.4", nil}, "random v4.21.4"},
		{installedPackage{"pulumi-policy", "1.21.0", str(`{"resource": false}`)}, ""},
		{installedPackage{"pulumi-policy", "1.21.0", nil}, ""},
		{installedPackage{"pulumi-aws", "6.0.0a123", nil}, ""},
	} {
		dep, err := packageDependency(tc.pkg)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if dep != nil {
			got = dep.Name + " " + dep.Version
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.pkg.Name, got, tc.want)
		}
	}
}
