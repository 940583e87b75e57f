package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// diffInputs compares checked old and new inputs. Every difference replaces
// the resource, as every attribute of random_password/random_string forces
// a new resource. Two Terraform plan modifiers are kept:
// keepers only count their non-null values (absent == {}), and
// overrideSpecial going from "" to unset is no change.
func diffInputs(olds, news resource.PropertyMap, ignoreChanges []string) plugin.DiffResult {
	ignored := map[string]bool{}
	for _, k := range ignoreChanges {
		ignored[k] = true
	}
	var keys []resource.PropertyKey
	detailed := map[string]plugin.PropertyDiff{}
	for _, k := range inputKeys {
		if ignored[string(k)] {
			continue
		}
		o, n := normalizeForDiff(k, olds[k]), normalizeForDiff(k, news[k])
		if sameValue(o, n) {
			continue
		}
		kind := plugin.DiffUpdateReplace
		switch {
		case o.IsNull():
			kind = plugin.DiffAddReplace
		case n.IsNull():
			kind = plugin.DiffDeleteReplace
		}
		keys = append(keys, k)
		detailed[string(k)] = plugin.PropertyDiff{Kind: kind, InputDiff: true}
	}
	if len(keys) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}
	}
	return plugin.DiffResult{
		Changes:      plugin.DiffSome,
		ReplaceKeys:  keys,
		ChangedKeys:  keys,
		DetailedDiff: detailed,
	}
}

// normalizeForDiff maps the values Terraform treats as "not set" to null.
func normalizeForDiff(k resource.PropertyKey, v resource.PropertyValue) resource.PropertyValue {
	p, known := unwrap(v)
	if !known {
		return v
	}
	switch {
	case k == keyOverrideSpecial && p.IsString() && p.StringValue() == "":
		return resource.NewNullProperty()
	case k == keyKeepers && p.IsObject():
		m := resource.PropertyMap{}
		for mk, mv := range p.ObjectValue() {
			if e, known := unwrap(mv); !known || !e.IsNull() {
				m[mk] = mv
			}
		}
		if len(m) == 0 {
			return resource.NewNullProperty()
		}
		return resource.NewProperty(m)
	}
	return v
}

// sameValue reports whether two inputs are equal, ignoring secretness. An
// unknown new value is never the same: it may change once known.
func sameValue(o, n resource.PropertyValue) bool {
	if n.ContainsUnknowns() {
		return false
	}
	return stripSecrets(o).DeepEquals(stripSecrets(n))
}

// stripSecrets removes secret wrappers at any depth.
func stripSecrets(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return stripSecrets(v.SecretValue().Element)
	case v.IsObject():
		m := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			m[k] = stripSecrets(e)
		}
		return resource.NewProperty(m)
	case v.IsArray():
		a := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			a[i] = stripSecrets(e)
		}
		return resource.NewProperty(a)
	}
	return v
}
