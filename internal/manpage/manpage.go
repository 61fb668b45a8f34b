// Package manpage writes the section-1 man pages of copper's binaries.
// Every page is generated from what the binary itself parses — its pflag
// flag sets and config's one settings table (Settings.Describe) — so a new
// flag or TOML key reaches the man page without anyone editing it.
package manpage

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/config"
)

// Page is one man page.
type Page struct {
	Name     string // program, e.g. copper-launch
	Summary  string // the NAME line after the dash
	Version  string // shown in the page footer
	Synopsis string // the program's usage text, kept as preformatted lines
	// Flags are listed under OPTIONS, except those that carry a setting:
	// those are listed once, under SETTINGS, with their TOML key.
	Flags *pflag.FlagSet
	// Settings lists every settings key (TOML key, flag, type, default,
	// allowed values); empty for a program that reads no settings.
	Settings []config.KeyInfo
	Sections []Section // more preformatted sections, after SETTINGS
	SeeAlso  []string  // other pages, "copper-node(1)"
}

// Section is a titled block of preformatted text.
type Section struct{ Title, Text string }

// Write renders p as roff (man(7) macros).
func Write(w io.Writer, p Page) error {
	if p.Name == "" || p.Summary == "" {
		return errors.New("man page: name and summary are required")
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"copper %s\" \"User Commands\"\n", strings.ToUpper(esc(p.Name)), esc(p.Version))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", esc(p.Name), esc(p.Summary))
	b.WriteString(".SH SYNOPSIS\n")
	pre(&b, p.Synopsis)

	settingFlags := map[string]bool{}
	for _, k := range p.Settings {
		settingFlags[strings.TrimPrefix(k.Flag, "--")] = true
	}
	b.WriteString(".SH OPTIONS\n")
	b.WriteString(".TP\n.B \\-\\-version\nprint the version, the commit and the Go version, then exit (also: \\fBversion\\fR)\n")
	if p.Flags != nil {
		p.Flags.VisitAll(func(f *pflag.Flag) {
			if settingFlags[f.Name] {
				return
			}
			b.WriteString(".TP\n.B " + esc(flagName(f)) + "\n" + esc(flagUsage(f)) + "\n")
		})
	}
	if len(p.Settings) > 0 {
		b.WriteString(".SH SETTINGS\n")
		b.WriteString("Every setting has a TOML key, read from the site file given with \\fB\\-\\-site\\fR " +
			"(embedded: local, aurora, frontier; or a file), and a flag that overrides it. " +
			"Defaults below are the built-in ones; the site files change some.\n")
		for _, k := range p.Settings {
			fmt.Fprintf(&b, ".TP\n.BR %s \" (\" %s \")\"\n", esc(k.Key), esc(k.Flag))
			line := k.Type + ", default " + k.Default
			if k.Range != "" {
				line += ", allowed " + k.Range
			}
			fmt.Fprintf(&b, "%s.\n.br\n%s\n", esc(line), esc(k.Doc))
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", esc(strings.ToUpper(s.Title)))
		pre(&b, s.Text)
	}
	if len(p.SeeAlso) > 0 {
		fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", esc(strings.Join(p.SeeAlso, ", ")))
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("writing man page %s: %w", p.Name, err)
	}
	return nil
}

// flagName is how a user types f: a Copper 1.0 short option by its
// letter only (its long name is internal), else --name and -x.
func flagName(f *pflag.Flag) string {
	if strings.HasPrefix(f.Name, config.LegacyFlagPrefix) && f.Shorthand != "" {
		return "-" + f.Shorthand
	}
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + ", " + name
	}
	if t := f.Value.Type(); t != "bool" {
		name += " " + t
	}
	return name
}

func flagUsage(f *pflag.Flag) string {
	u := f.Usage
	if d := f.DefValue; d != "" && d != "false" && d != "[]" && d != "0" && d != "-1" {
		u += " (default " + d + ")"
	}
	return u
}

// pre writes text as preformatted lines.
func pre(b *strings.Builder, text string) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(esc(line) + "\n")
	}
	b.WriteString(".fi\n")
}

// esc keeps text literal in roff: backslashes, dashes (so flags stay
// copy-pasteable as ASCII hyphens) and a leading control character.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
