package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/esc"
	"github.com/pulumi/esc/eval"
)

// fakeKeyMaterial derives the AES key used for `fn::secret: {ciphertext: ...}`
// values. It is deliberately public: esc-eval checks document structure, it
// never protects anything. Ciphertext made by the Pulumi Cloud cannot be
// decrypted with it and is reported as a diagnostic.
const fakeKeyMaterial = "esc-eval fake key: NOT A SECRET, offline evaluation only"

// fakeKey encrypts and decrypts secrets with AES-256-GCM under the fake key.
type fakeKey struct{}

var (
	_ eval.Decrypter = fakeKey{}
	_ eval.Encrypter = fakeKey{}
)

func (fakeKey) aead() (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(fakeKeyMaterial))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Encrypt seals plaintext as nonce||ciphertext.
func (k fakeKey) Encrypt(_ context.Context, plaintext []byte) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Decrypt opens a value produced by Encrypt.
func (k fakeKey) Decrypt(_ context.Context, ciphertext []byte) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < aead.NonceSize() {
		return nil, errors.New("ciphertext too short for the esc-eval fake key")
	}
	nonce, sealed := ciphertext[:aead.NonceSize()], ciphertext[aead.NonceSize():]
	plaintext, err := aead.Open(nil, nonce, sealed, nil)
	if err != nil {
		return nil, errors.New("ciphertext was not made with the esc-eval fake key (Pulumi Cloud ciphertext cannot be evaluated offline)")
	}
	return plaintext, nil
}

// noProviders refuses every fn::open / fn::rotate provider: esc-eval runs
// offline, so a document that needs one yields an evaluation diagnostic.
type noProviders struct{}

var _ eval.ProviderLoader = noProviders{}

func (noProviders) LoadProvider(_ context.Context, name string) (esc.Provider, error) {
	return nil, fmt.Errorf("provider %q is not available to esc-eval (offline evaluation)", name)
}

func (noProviders) LoadRotator(_ context.Context, name string) (esc.Rotator, error) {
	return nil, fmt.Errorf("rotator %q is not available to esc-eval (offline evaluation)", name)
}

// fileEnvironments maps environment names (as written in `imports:`, e.g.
// "redis/dev") to the files that hold their definitions.
type fileEnvironments struct {
	files map[string]string
}

var _ eval.EnvironmentLoader = (*fileEnvironments)(nil)

func newFileEnvironments() *fileEnvironments {
	return &fileEnvironments{files: map[string]string{}}
}

// add registers NAME=FILE (or a bare FILE, named after its base name without
// extension) and returns the environment name.
func (f *fileEnvironments) add(spec string) (string, error) {
	name, path, found := strings.Cut(spec, "=")
	if !found {
		path = spec
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if name == "" || path == "" {
		return "", fmt.Errorf("invalid environment %q: want NAME=FILE or FILE", spec)
	}
	if prev, ok := f.files[name]; ok && prev != path {
		return "", fmt.Errorf("environment %q given twice (%s and %s)", name, prev, path)
	}
	f.files[name] = path
	return name, nil
}

// names lists the registered environment names, sorted.
func (f *fileEnvironments) names() []string {
	names := make([]string, 0, len(f.files))
	for name := range f.files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// fileOf returns the file registered for an environment name, or "".
func (f *fileEnvironments) fileOf(name string) string {
	return f.files[name]
}

// LoadEnvironment implements eval.EnvironmentLoader.
func (f *fileEnvironments) LoadEnvironment(_ context.Context, name string) ([]byte, eval.Decrypter, error) {
	path, ok := f.files[name]
	if !ok {
		return nil, nil, fmt.Errorf("environment %q is not known to esc-eval (known: %s); pass it as NAME=FILE or --import NAME=FILE",
			name, strings.Join(f.names(), ", "))
	}
	source, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return source, fakeKey{}, nil
}
