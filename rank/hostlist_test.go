package rank

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHostlist(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{" a,b\n", []string{"a", "b"}},
		{"n[1-3]", []string{"n1", "n2", "n3"}},
		{"n[1-3]-ib", []string{"n1-ib", "n2-ib", "n3-ib"}},
		{"frontier[00001-00004,00010],login[1-2]", []string{
			"frontier00001", "frontier00002", "frontier00003", "frontier00004", "frontier00010", "login1", "login2"}},
		{"n[8-11]", []string{"n8", "n9", "n10", "n11"}},
		{"n[08-11]", []string{"n08", "n09", "n10", "n11"}},
		{"n[098-101]", []string{"n098", "n099", "n100", "n101"}},
		{"n[007]", []string{"n007"}},
		{"n[5,1-2]", []string{"n5", "n1", "n2"}},
		{"x[1-2]c[0-1]", []string{"x1c0", "x1c1", "x2c0", "x2c1"}},
		{"[1-2]", []string{"1", "2"}},
		{"a.b.c,x1000c0s0b0n0.hsn", []string{"a.b.c", "x1000c0s0b0n0.hsn"}},
		{"a,a", []string{"a", "a"}},
		{"gpu_[1-2],cpu[3]", []string{"gpu_1", "gpu_2", "cpu3"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHostlist(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseHostlistErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr []string
	}{
		{"", []string{"empty hostlist"}},
		{"   ", []string{"empty hostlist"}},
		{"a[1-", []string{`"a[1-"`, "never closed"}},
		{"ok,a[3-1]", []string{`"a[3-1]"`, "3-1 runs backwards"}},
		{"a[x]", []string{`"a[x]"`, `"x" is not a number`}},
		{"a]]", []string{`"a]]"`, "']' without '['"}},
		{"ok,a]],b", []string{`"a]]"`}},
		{"a[[1]]", []string{`"a[[1]]"`, "nested"}},
		{"a,,b", []string{"part 2 is empty"}},
		{",a", []string{"part 1 is empty"}},
		{"a,", []string{"part 2 is empty"}},
		{"a[]", []string{`"a[]"`, "empty brackets"}},
		{"a[1,]", []string{`"a[1,]"`, "empty element"}},
		{"a[1-]", []string{`"a[1-]"`, "bad range"}},
		{"a[-1]", []string{`"a[-1]"`, "bad range"}},
		{"a[1-2-3]", []string{`"a[1-2-3]"`}},
		{"a b", []string{`"a b"`, "not allowed"}},
		{"a[0-9999999]", []string{"more than"}},
		{"a[0-1999]b[0-1999]", []string{"more than"}},
		{"a[1234567890123456789]", []string{"digits"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseHostlist(tt.in)
			require.Error(t, err)
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func FuzzParseHostlist(f *testing.F) {
	for _, s := range []string{
		"a", "a,b", "n[1-3]-ib", "frontier[00001-00004,00010],login[1-2]", "x[1-2]c[0-1]",
		"a[1-", "a[3-1]", "a[x]", "a]]", "a,,b", "a[[1]]", "a[]", "[0-0]", "n[09-10]",
		"frontier[0001-0400010]login[1-2-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := ParseHostlist(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, hosts)
		for _, h := range hosts {
			require.NotEmpty(t, h)
			require.False(t, strings.ContainsAny(h, ",[] \t\n"), "host %q", h)
		}
		// Expanded names are a valid hostlist of themselves.
		again, err := ParseHostlist(strings.Join(hosts, ","))
		require.NoError(t, err)
		require.Equal(t, hosts, again)
		// Without brackets, a hostlist is a plain comma list.
		if !strings.ContainsAny(s, "[]") {
			require.Equal(t, strings.Split(strings.TrimSpace(s), ","), hosts)
		}
	})
}
