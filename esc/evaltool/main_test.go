package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/esc/eval"
)

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTool runs esc-eval in-process and decodes its report.
func runTool(t *testing.T, args ...string) (int, report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	var r report
	if code != 2 {
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("report is not JSON: %v\n%s", err, stdout.String())
		}
	}
	return code, r, stdout.String()
}

const base = `values:
  redis:
    password:
      fn::secret: "s3cr3t-plaintext"
    hosts: [a, b]
  environmentVariables:
    REDIS_PASSWORD: ${redis.password}
    HOSTS:
      fn::join: [",", "${redis.hosts}"]
`

func TestSecretsAreRedactedUnlessRevealed(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "base.yaml", base)

	code, r, out := runTool(t, "redis/dev="+path)
	if code != 0 || !r.OK {
		t.Fatalf("exit %d, report %s", code, out)
	}
	if strings.Contains(out, "s3cr3t-plaintext") {
		t.Fatalf("plaintext leaked without --reveal:\n%s", out)
	}
	env := r.Environments[0]
	if v := env.EnvironmentVariables["REDIS_PASSWORD"]; !v.Secret || v.Value != redacted {
		t.Fatalf("REDIS_PASSWORD = %+v", v)
	}
	if v := env.EnvironmentVariables["HOSTS"]; v.Secret || v.Value != "a,b" {
		t.Fatalf("HOSTS = %+v", v)
	}

	_, _, out = runTool(t, "--reveal", "redis/dev="+path)
	if !strings.Contains(out, "s3cr3t-plaintext") {
		t.Fatalf("--reveal did not print the plaintext:\n%s", out)
	}
}

func TestImportsResolveAndBrokenReferencesFail(t *testing.T) {
	dir := t.TempDir()
	redis := writeFile(t, dir, "redis.yaml", base)
	good := writeFile(t, dir, "good.yaml", "imports: [redis/dev]\nvalues:\n  pw: ${redis.password}\n")
	bad := writeFile(t, dir, "bad.yaml", "imports: [redis/dev]\nvalues:\n  pw: ${redis.passwrd}\n")

	code, r, out := runTool(t, "--import", "redis/dev="+redis, good)
	if code != 0 || len(r.Environments) != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !r.Environments[0].Values["pw"].Secret {
		t.Fatalf("secretness lost through the import:\n%s", out)
	}

	code, r, out = runTool(t, "--import", "redis/dev="+redis, bad)
	if code != 1 || r.OK {
		t.Fatalf("broken reference not reported (exit %d):\n%s", code, out)
	}
	if d := r.Environments[0].Diagnostics; len(d) == 0 || !strings.Contains(d[0].Summary, "passwrd") || d[0].File != bad {
		t.Fatalf("diagnostics = %+v", d)
	}

	code, _, out = runTool(t, good)
	if code != 1 || !strings.Contains(out, "redis/dev") {
		t.Fatalf("missing import not reported (exit %d):\n%s", code, out)
	}
}

func TestNonScalarEnvironmentVariableIsReported(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "e.yaml", "values:\n  environmentVariables:\n    HOSTS: [a, b]\n")
	code, r, out := runTool(t, path)
	if code != 1 || r.Environments[0].Diagnostics[0].Source != "esc-eval" {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestFakeKeyCiphertextDecrypts(t *testing.T) {
	ctx := context.Background()
	encrypted, err := eval.EncryptSecrets(ctx, "c.yaml", []byte(base), fakeKey{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(encrypted, []byte("s3cr3t-plaintext")) {
		t.Fatalf("EncryptSecrets left plaintext:\n%s", encrypted)
	}
	path := writeFile(t, t.TempDir(), "c.yaml", string(encrypted))
	code, _, out := runTool(t, "--reveal", path)
	if code != 0 || !strings.Contains(out, "s3cr3t-plaintext") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, _ := runTool(t); code != 2 {
		t.Fatalf("no arguments: exit %d", code)
	}
	if code, _, _ := runTool(t, "x="+filepath.Join(t.TempDir(), "missing.yaml")); code != 2 {
		t.Fatalf("missing file: exit %d", code)
	}
}
