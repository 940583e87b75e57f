package main

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"golang.org/x/crypto/bcrypt"
)

func count(s, chars string) int {
	n := 0
	for _, r := range s {
		if strings.ContainsRune(chars, r) {
			n++
		}
	}
	return n
}

func TestGenerateStringHonoursMinimumsAndClasses(t *testing.T) {
	for i := 0; i < 200; i++ {
		s, err := generateString(stringParams{
			Length: 32, Upper: true, Lower: true, Numeric: true, Special: true,
			MinUpper: 2, MinLower: 2, MinNumeric: 2, MinSpecial: 2, OverrideSpecial: "-_.",
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 {
			t.Fatalf("length %d", len(s))
		}
		if count(s, upperChars) < 2 || count(s, lowerChars) < 2 || count(s, numericChars) < 2 || count(s, "-_.") < 2 {
			t.Fatalf("minimums not met: %q", s)
		}
		if strings.ContainsAny(s, "!@#$%&*()=+[]{}<>:?") {
			t.Fatalf("default special characters used despite overrideSpecial: %q", s)
		}
	}
}

func TestGenerateStringOnlyEnabledClasses(t *testing.T) {
	s, err := generateString(stringParams{Length: 64, Numeric: true})
	if err != nil {
		t.Fatal(err)
	}
	if count(s, numericChars) != 64 {
		t.Fatalf("non-numeric characters in %q", s)
	}
	if _, err := generateString(stringParams{Length: 4}); err == nil {
		t.Fatal("no character class enabled: want an error")
	}
}

func TestCheckInputsDefaultsAndValidation(t *testing.T) {
	got, failures := checkInputs(resource.PropertyMap{"length": resource.NewProperty(16.0)})
	if len(failures) != 0 {
		t.Fatalf("failures: %v", failures)
	}
	for _, k := range []resource.PropertyKey{keyLower, keyUpper, keySpecial, keyNumeric, keyNumber} {
		if !got[k].IsBool() || !got[k].BoolValue() {
			t.Errorf("%s: want default true, got %v", k, got[k])
		}
	}
	for _, k := range minKeys {
		if !got[k].IsNumber() || got[k].NumberValue() != 0 {
			t.Errorf("%s: want default 0, got %v", k, got[k])
		}
	}

	got, _ = checkInputs(resource.PropertyMap{"length": resource.NewProperty(8.0), "number": resource.NewProperty(false)})
	if got[keyNumeric].BoolValue() {
		t.Error("numeric must follow the deprecated number")
	}

	for name, in := range map[string]resource.PropertyMap{
		"missing length": {},
		"zero length":    {"length": resource.NewProperty(0.0)},
		"fraction":       {"length": resource.NewProperty(1.5)},
		"mins too big":   {"length": resource.NewProperty(3.0), "minUpper": resource.NewProperty(2.0), "minLower": resource.NewProperty(2.0)},
		"number/numeric": {"length": resource.NewProperty(3.0), "number": resource.NewProperty(true), "numeric": resource.NewProperty(false)},
		"unknown key":    {"length": resource.NewProperty(3.0), "size": resource.NewProperty(3.0)},
	} {
		if _, failures := checkInputs(in); len(failures) == 0 {
			t.Errorf("%s: want a check failure", name)
		}
	}

	// Unknown values pass Check in a preview.
	if _, failures := checkInputs(resource.PropertyMap{"length": resource.MakeComputed(resource.NewProperty(""))}); len(failures) != 0 {
		t.Errorf("unknown length: %v", failures)
	}
}

func TestDiffReplacesOnAnyChange(t *testing.T) {
	base, _ := checkInputs(resource.PropertyMap{"length": resource.NewProperty(16.0), "overrideSpecial": resource.NewProperty("")})
	same, _ := checkInputs(resource.PropertyMap{"length": resource.NewProperty(16.0), "keepers": resource.NewProperty(resource.PropertyMap{})})
	if d := diffInputs(base, same, nil); d.Changes != plugin.DiffNone {
		t.Fatalf("empty keepers / empty overrideSpecial must be no change: %+v", d)
	}
	longer, _ := checkInputs(resource.PropertyMap{"length": resource.NewProperty(20.0)})
	d := diffInputs(base, longer, nil)
	if d.Changes != plugin.DiffSome || len(d.ReplaceKeys) != 1 || d.ReplaceKeys[0] != keyLength {
		t.Fatalf("length change must replace: %+v", d)
	}
	keeper, _ := checkInputs(resource.PropertyMap{
		"length":  resource.NewProperty(16.0),
		"keepers": resource.NewProperty(resource.PropertyMap{"rotation": resource.NewProperty("2")}),
	})
	if d := diffInputs(base, keeper, nil); d.Changes != plugin.DiffSome || !d.DetailedDiff["keepers"].Kind.IsReplace() {
		t.Fatalf("keepers change must replace: %+v", d)
	}
	secretSame, _ := checkInputs(resource.PropertyMap{"length": resource.MakeSecret(resource.NewProperty(16.0))})
	if d := diffInputs(base, secretSame, nil); d.Changes != plugin.DiffNone {
		t.Fatalf("a value turned secret is no change: %+v", d)
	}
}

func TestCreatePasswordIsSecretWithMatchingHash(t *testing.T) {
	p := newRandomProvider("4.21.4")
	in, _ := checkInputs(resource.PropertyMap{"length": resource.NewProperty(24.0)})
	resp, err := p.Create(t.Context(), plugin.CreateRequest{Type: passwordType, Properties: in})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID != staticID {
		t.Errorf("id %q", resp.ID)
	}
	result, hash := resp.Properties[keyResult], resp.Properties[keyBcryptHash]
	if !result.IsSecret() || !hash.IsSecret() {
		t.Fatal("result and bcryptHash must be secrets")
	}
	pw := result.SecretValue().Element.StringValue()
	if len(pw) != 24 {
		t.Errorf("password length %d", len(pw))
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash.SecretValue().Element.StringValue()), []byte(pw)); err != nil {
		t.Errorf("bcryptHash does not match: %v", err)
	}

	preview, err := p.Create(t.Context(), plugin.CreateRequest{Type: passwordType, Properties: in, Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if !preview.Properties[keyResult].IsComputed() {
		t.Error("preview result must be unknown")
	}
}
