package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/bcrypt"
)

// Character classes of terraform-provider-random.
const (
	numericChars   = "0123456789"
	lowerChars     = "abcdefghijklmnopqrstuvwxyz"
	upperChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	defaultSpecial = "!@#$%&*()-_=+[]{}<>:?"
)

// stringParams are the checked inputs that shape a generated string.
type stringParams struct {
	Length                                     int64
	Upper, Lower, Numeric, Special             bool
	MinUpper, MinLower, MinNumeric, MinSpecial int64
	OverrideSpecial                            string
}

// generateString draws a random string the way terraform-provider-random
// does: first the minimum number of characters of each class (whether or not
// the class is otherwise enabled), then the rest from the union of the
// enabled classes, then a random permutation of the whole. overrideSpecial,
// when not empty, replaces the default special characters.
func generateString(p stringParams) (string, error) {
	special := defaultSpecial
	if p.OverrideSpecial != "" {
		special = p.OverrideSpecial
	}
	var pool string
	if p.Upper {
		pool += upperChars
	}
	if p.Lower {
		pool += lowerChars
	}
	if p.Numeric {
		pool += numericChars
	}
	if p.Special {
		pool += special
	}

	mins := p.MinUpper + p.MinLower + p.MinNumeric + p.MinSpecial
	if p.Length < 1 || p.Length < mins {
		return "", fmt.Errorf("length %d must be at least 1 and at least the sum of the minimums (%d)", p.Length, mins)
	}

	result := make([]byte, 0, p.Length)
	for _, class := range []struct {
		chars string
		n     int64
	}{
		{numericChars, p.MinNumeric},
		{lowerChars, p.MinLower},
		{upperChars, p.MinUpper},
		{special, p.MinSpecial},
	} {
		b, err := randomChars(class.chars, class.n)
		if err != nil {
			return "", err
		}
		result = append(result, b...)
	}
	rest, err := randomChars(pool, p.Length-int64(len(result)))
	if err != nil {
		return "", err
	}
	result = append(result, rest...)

	if err := shuffle(result); err != nil {
		return "", err
	}
	return string(result), nil
}

// randomChars returns n characters drawn uniformly from chars.
func randomChars(chars string, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	if chars == "" {
		return nil, errors.New("no characters to choose from: enable at least one of upper, lower, numeric and special")
	}
	out := make([]byte, n)
	for i := range out {
		j, err := randomIndex(len(chars))
		if err != nil {
			return nil, err
		}
		out[i] = chars[j]
	}
	return out, nil
}

// shuffle permutes b uniformly at random (Fisher-Yates).
func shuffle(b []byte) error {
	for i := len(b) - 1; i > 0; i-- {
		j, err := randomIndex(i + 1)
		if err != nil {
			return err
		}
		b[i], b[j] = b[j], b[i]
	}
	return nil
}

// randomIndex returns a uniform random integer in [0, n) from crypto/rand.
func randomIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading random numbers: %w", err)
	}
	return int(v.Int64()), nil
}

// bcryptHash hashes s with bcrypt's default cost. bcrypt only takes 72
// bytes; like the Terraform provider, longer strings hash their first 72.
func bcryptHash(s string) (string, error) {
	b := []byte(s)
	if len(b) > 72 {
		b = b[:72]
	}
	h, err := bcrypt.GenerateFromPassword(b, bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("generating bcrypt hash: %w", err)
	}
	return string(h), nil
}
