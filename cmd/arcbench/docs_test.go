package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The docs' command lines are checked against the CLI and the Makefile: every
// `arcbench ...` a reader would type names a command that exists, with flags
// that command has, and every `make X` a target the Makefile has.
//
// What counts as a command line:
//   - in a fenced block marked text, sh, bash, shell or console: when the block
//     has lines starting with "$ " (a transcript), those lines and no other (the
//     rest is output); otherwise every line that starts, after any VAR=value
//     assignments, with "arcbench", "make" or "go run ./cmd/arcbench" (outside
//     text blocks, also one that pipes into such a command). A line ending in
//     "\" goes on on the next.
//   - outside fenced blocks: an inline code span that starts, after any VAR=value
//     assignments, with "arcbench ", "make " or "go run ./cmd/arcbench".
//
// A command line is read as a shell reads it (quotes, $(...), comments,
// redirections, pipes, && and ;); each part of a pipeline that runs arcbench
// or make is checked. Placeholders are not: UPPERCASE words (RUN_ID, FILE,
// RUN_ID...), <words in angle brackets>, "...", and the synopsis signs [ ] ( ) |
// (a | between brackets, or inside a word as in make synth|diff, separates
// alternatives, each of which is checked).

// docFiles are the pages checked: the README and every page in docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "..", "README.md")}, files...)
}

// cliRoot builds the command tree as main does, with the help flags, the help
// command and the completion command cobra adds when it executes.
func cliRoot() (*cobra.Command, error) {
	root := newRootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var helpFlags func(*cobra.Command)
	helpFlags = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, sub := range c.Commands() {
			helpFlags(sub)
		}
	}
	helpFlags(root)
	return root, nil
}

// makefile is what the checker knows of the Makefile: its targets, and the
// arcbench command a target runs with $(ARGS) appended (make run ARGS=...).
type makefile struct {
	targets map[string]bool
	argsCmd map[string][]string // target -> arcbench words before $(ARGS)
}

var (
	makeRule = regexp.MustCompile(`^([^\s:=#][^:=#]*?)\s*::?(?:[^=]|$)`)
	// A recipe line that runs the CLI with the make variable ARGS.
	makeArgsRun = regexp.MustCompile(`(?:go run \./cmd/arcbench|arcbench)\s+([^$]*?)\s*\$\(ARGS\)`)
)

func parseMakefile(text string) makefile {
	m := makefile{targets: map[string]bool{}, argsCmd: map[string][]string{}}
	var current []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "\t") {
			if g := makeArgsRun.FindStringSubmatch(line); g != nil {
				for _, target := range current {
					m.argsCmd[target] = strings.Fields(g[1])
				}
			}
			continue
		}
		current = nil
		g := makeRule.FindStringSubmatch(line)
		if g == nil {
			continue
		}
		names := strings.Fields(g[1])
		if len(names) == 1 && names[0] == ".PHONY" {
			_, prereqs, _ := strings.Cut(line, ":")
			for _, name := range strings.Fields(prereqs) {
				m.targets[name] = true
			}
			continue
		}
		for _, name := range names {
			if !strings.Contains(name, "$") && !strings.HasPrefix(name, ".") {
				m.targets[name] = true
				current = append(current, name)
			}
		}
	}
	return m
}

// docCommand is one command line of a page.
type docCommand struct {
	file string
	line int
	text string
}

func (c docCommand) String() string { return fmt.Sprintf("%s:%d: `%s`", c.file, c.line, c.text) }

var (
	fenceOpen     = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})\\s*([^\\s`]*)")
	commandFences = map[string]bool{"text": true, "sh": true, "bash": true, "shell": true, "console": true}
	envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// withoutEnv is a command's words without the VAR=value assignments before it.
func withoutEnv(words []shellWord) []shellWord {
	for len(words) > 0 && envAssignment.MatchString(words[0].text) {
		words = words[1:]
	}
	return words
}

// cliArgs returns the words after arcbench (or go run ./cmd/arcbench) when
// words run the CLI.
func cliArgs(words []shellWord) ([]shellWord, bool) {
	switch {
	case len(words) >= 1 && words[0].text == "arcbench":
		return words[1:], true
	case len(words) >= 3 && words[0].text == "go" && words[1].text == "run" && strings.TrimSuffix(words[2].text, "/") == "./cmd/arcbench":
		return words[3:], true
	}
	return nil, false
}

// runsCommand reports whether words (without assignments) run arcbench or make.
func runsCommand(words []shellWord) bool {
	_, cli := cliArgs(words)
	return cli || len(words) > 0 && words[0].text == "make"
}

// startsCommand reports whether the line s, after any VAR=value assignments,
// starts with arcbench, make or go run ./cmd/arcbench.
func startsCommand(s string) bool {
	return runsCommand(withoutEnv(segments(shellWords(s))[0]))
}

// pipesToCommand reports whether any part of a pipeline or list is a
// command (echo '{...}' | arcbench invoke NAME).
func pipesToCommand(s string) bool {
	for _, seg := range segments(shellWords(s)) {
		if runsCommand(withoutEnv(seg)) {
			return true
		}
	}
	return false
}

// findCommands returns the command lines of a page (see the top of this file).
func findCommands(file, md string) []docCommand {
	lines := strings.Split(md, "\n")
	var cmds []docCommand
	prose := make([]string, len(lines)) // the lines outside fenced blocks; blank inside them
	for i := 0; i < len(lines); i++ {
		g := fenceOpen.FindStringSubmatch(lines[i])
		if g == nil {
			prose[i] = lines[i]
			continue
		}
		marker, lang := g[1], strings.ToLower(g[2])
		start := i + 1
		end := start
		for end < len(lines) {
			l := strings.TrimSpace(lines[end])
			if strings.HasPrefix(l, marker) && strings.Trim(l, marker[:1]) == "" {
				break
			}
			end++
		}
		if commandFences[lang] {
			cmds = append(cmds, blockCommands(file, lang, lines[start:end], start+1)...)
		}
		i = end
	}
	return append(cmds, inlineCommands(file, prose)...)
}

// blockCommands finds the command lines of a fenced block whose first line is
// line number first.
func blockCommands(file, lang string, block []string, first int) []docCommand {
	type joined struct {
		line int
		text string
	}
	var ls []joined
	for i := 0; i < len(block); i++ {
		j := joined{line: first + i, text: block[i]}
		for strings.HasSuffix(strings.TrimRight(j.text, " "), `\`) && i+1 < len(block) {
			i++
			j.text = strings.TrimSuffix(strings.TrimRight(j.text, " "), `\`) + " " + strings.TrimSpace(block[i])
		}
		ls = append(ls, j)
	}
	transcript := false
	for _, l := range ls {
		if t := strings.TrimSpace(l.text); strings.HasPrefix(t, "$ ") {
			transcript = true
		}
	}
	var cmds []docCommand
	for _, l := range ls {
		t := strings.TrimSpace(l.text)
		if transcript {
			if strings.HasPrefix(t, "$ ") {
				cmds = append(cmds, docCommand{file, l.line, strings.TrimSpace(t[2:])})
			}
		} else if startsCommand(t) || lang != "text" && pipesToCommand(t) {
			cmds = append(cmds, docCommand{file, l.line, t})
		}
	}
	return cmds
}

// inlineCommands finds the inline code spans of prose (a page's lines, blank
// where a fenced block was) that are commands. A span may run over lines, not
// over a blank one.
func inlineCommands(file string, prose []string) []docCommand {
	var cmds []docCommand
	for i := 0; i < len(prose); {
		if strings.TrimSpace(prose[i]) == "" {
			i++
			continue
		}
		start := i
		for i < len(prose) && strings.TrimSpace(prose[i]) != "" {
			i++
		}
		para := strings.Join(prose[start:i], "\n")
		for _, s := range codeSpans(para) {
			text := strings.Join(strings.Fields(strings.ReplaceAll(s.text, `\|`, "|")), " ")
			if startsCommand(text) && strings.Contains(text, " ") {
				cmds = append(cmds, docCommand{file, start + 1 + strings.Count(para[:s.at], "\n"), text})
			}
		}
	}
	return cmds
}

type span struct {
	at   int
	text string
}

// codeSpans returns the code spans of a paragraph: a run of backticks up to
// the next run of the same length.
func codeSpans(para string) []span {
	var spans []span
	for i := 0; i < len(para); {
		if para[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(para) && para[i+n] == '`' {
			n++
		}
		open := i
		i += n
		for j := i; j < len(para); {
			if para[j] != '`' {
				j++
				continue
			}
			m := 0
			for j+m < len(para) && para[j+m] == '`' {
				m++
			}
			if m == n {
				spans = append(spans, span{open, strings.TrimSpace(para[i:j])})
				i = j + m
				break
			}
			j += m
		}
	}
	return spans
}

// shellWord is a word of a command line; op marks a control operator
// (|, ||, &&, ;, &).
type shellWord struct {
	text   string
	op     bool
	quoted bool
}

// shellWords splits a command line as a shell would, enough for the docs:
// quotes, backslashes, $(...) and `...` stay inside their word, a # starting a
// word starts a comment, and | between two characters of a word (synth|diff)
// is kept in it as a synopsis' alternatives.
func shellWords(line string) []shellWord {
	var (
		words  []shellWord
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	flush := func() {
		if inWord {
			words = append(words, shellWord{text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	r := []rune(line)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '#' && !inWord:
			flush()
			return words
		case c == '\\' && i+1 < len(r):
			i++
			cur.WriteRune(r[i])
			inWord = true
		case c == '\'':
			inWord, quoted = true, true
			for i++; i < len(r) && r[i] != '\''; i++ {
				cur.WriteRune(r[i])
			}
		case c == '"':
			inWord, quoted = true, true
			for i++; i < len(r) && r[i] != '"'; i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
				}
				cur.WriteRune(r[i])
			}
		case c == '$' && i+1 < len(r) && r[i+1] == '(':
			depth := 0
			for ; i < len(r); i++ {
				cur.WriteRune(r[i])
				if r[i] == '(' {
					depth++
				} else if r[i] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			inWord = true
		case c == '`':
			cur.WriteRune(c)
			for i++; i < len(r) && r[i] != '`'; i++ {
				cur.WriteRune(r[i])
			}
			cur.WriteRune('`')
			inWord = true
		case c == '|' && inWord && i+1 < len(r) && !strings.ContainsRune(" \t|", r[i+1]):
			cur.WriteRune(c) // a|b: alternatives
		case c == '&' && strings.HasSuffix(cur.String(), ">"):
			cur.WriteRune(c) // 2>&1
		case c == '|' || c == ';' || c == '&':
			flush()
			op := string(c)
			if c != ';' && i+1 < len(r) && r[i+1] == c {
				op += string(c)
				i++
			}
			words = append(words, shellWord{text: op, op: true})
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	flush()
	return words
}

// segments splits a command line's words into the commands it runs. A | inside
// a synopsis' brackets, as in (--tasks FILE | --task ID), is not a pipe: it
// stays, as a word, in its command.
func segments(words []shellWord) [][]shellWord {
	var (
		segs  [][]shellWord
		cur   []shellWord
		depth int
	)
	for _, w := range words {
		if w.op {
			if w.text == "|" && depth > 0 {
				cur = append(cur, shellWord{text: "|"})
				continue
			}
			segs = append(segs, cur)
			cur, depth = nil, 0
			continue
		}
		if !w.quoted && !strings.Contains(w.text, "$(") {
			depth += len(w.text) - len(strings.TrimLeft(w.text, "(["))
			depth -= len(w.text) - len(strings.TrimRight(w.text, ")]"))
			depth = max(depth, 0)
		}
		cur = append(cur, w)
	}
	return append(segs, cur)
}

var (
	placeholderWord = regexp.MustCompile(`^(?:[A-Z][A-Z0-9_]*|<[^<>]*>|\.\.\.|…)(?:\.\.\.|…)?$`)
	redirection     = regexp.MustCompile(`^(?:[0-9&]?>>?|<)(.*)$`)
)

// synopsisWord is a word without the synopsis signs around it: ( [ before,
// ) ] after.
func synopsisWord(w shellWord) string {
	if w.quoted {
		return w.text
	}
	return strings.TrimRight(strings.TrimLeft(w.text, "(["), ")]")
}

func isPlaceholder(w string) bool { return w == "" || w == "|" || placeholderWord.MatchString(w) }

// docChecker checks command lines against the CLI and the Makefile.
type docChecker struct {
	root *cobra.Command
	make makefile
}

// check returns what is wrong with a command line: one message per mistake.
func (c *docChecker) check(cmd docCommand) []string {
	var problems []string
	for _, seg := range segments(shellWords(cmd.text)) {
		var words []shellWord
		for i := 0; i < len(seg); i++ {
			w := seg[i]
			if !w.quoted && !placeholderWord.MatchString(w.text) {
				if g := redirection.FindStringSubmatch(w.text); g != nil {
					if g[1] == "" {
						i++ // the redirection's target
					}
					continue
				}
			}
			words = append(words, w)
		}
		words = withoutEnv(words)
		if args, ok := cliArgs(words); ok {
			problems = append(problems, c.checkArcbench(args)...)
		} else if len(words) > 0 && words[0].text == "make" {
			problems = append(problems, c.checkMake(words[1:])...)
		}
	}
	return problems
}

// checkArcbench checks the words after "arcbench": the subcommands, then every
// flag against the command they lead to.
func (c *docChecker) checkArcbench(args []shellWord) []string {
	var problems []string
	cmd := c.root
	path := func() string { return cmd.CommandPath() }
	pathDone := false
	for i := 0; i < len(args); i++ {
		w := synopsisWord(args[i])
		switch {
		case args[i].quoted:
			pathDone = true
		case w == "--":
			return problems
		case strings.HasPrefix(w, "--"):
			name, _, hasValue := strings.Cut(w[2:], "=")
			found, takesValue := lookupFlag(cmd, name)
			if !found {
				problems = append(problems, fmt.Sprintf("%s has no flag --%s", path(), name))
				continue
			}
			if !hasValue && takesValue {
				i++
			}
		case strings.HasPrefix(w, "-") && len(w) > 1:
			// -o FILE, -v, or shorthands run together (-vo FILE).
			for j := 1; j < len(w); j++ {
				found, takesValue := shorthandFlag(cmd, w[j:j+1])
				if !found {
					problems = append(problems, fmt.Sprintf("%s has no flag -%s", path(), w[j:j+1]))
					break
				}
				if takesValue {
					if j == len(w)-1 {
						i++
					}
					break
				}
			}
		case isPlaceholder(w):
			if !pathDone && cmd.HasSubCommands() {
				// A placeholder for a subcommand: nothing more can be checked.
				return problems
			}
			pathDone = true
		case !pathDone && cmd.HasSubCommands():
			var next *cobra.Command
			for _, alt := range strings.Split(w, "|") {
				sub := subcommand(cmd, alt)
				if sub == nil {
					problems = append(problems, fmt.Sprintf("%s has no subcommand %q", path(), alt))
					return problems
				}
				next = sub
			}
			cmd = next
		default:
			pathDone = true
		}
	}
	return problems
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || slices.Contains(sub.Aliases, name) {
			return sub
		}
	}
	return nil
}

// lookupFlag finds --name on cmd (its own flags and its parents' persistent
// ones) and says whether it takes a value (a bool does not).
func lookupFlag(cmd *cobra.Command, name string) (found, takesValue bool) {
	_ = cmd.InheritedFlags() // merges the parents' persistent flags into Flags()
	if f := cmd.Flags().Lookup(name); f != nil {
		return true, f.NoOptDefVal == ""
	}
	return false, false
}

// shorthandFlag finds -s on cmd, as lookupFlag finds --name.
func shorthandFlag(cmd *cobra.Command, s string) (found, takesValue bool) {
	_ = cmd.InheritedFlags()
	if f := cmd.Flags().ShorthandLookup(s); f != nil {
		return true, f.NoOptDefVal == ""
	}
	return false, false
}

// makeValueOptions are make's own options that take the next word as value.
var makeValueOptions = map[string]bool{"-C": true, "-f": true, "-I": true, "-o": true, "-W": true}

// checkMake checks the words after "make": every target exists, and a target
// that runs arcbench with $(ARGS) gets ARGS its command takes.
func (c *docChecker) checkMake(args []shellWord) []string {
	var (
		problems []string
		targets  []string
		extra    []shellWord
	)
	for i := 0; i < len(args); i++ {
		w := synopsisWord(args[i])
		switch {
		case strings.HasPrefix(w, "-"):
			if makeValueOptions[w] {
				i++
			}
		case strings.HasPrefix(w, "ARGS="):
			extra = append(extra, shellWords(strings.TrimPrefix(w, "ARGS="))...)
		case envAssignment.MatchString(w) || isPlaceholder(w):
		default:
			for _, t := range strings.Split(w, "|") {
				if !c.make.targets[t] {
					problems = append(problems, fmt.Sprintf("the Makefile has no target %q", t))
					continue
				}
				targets = append(targets, t)
			}
		}
	}
	if len(extra) > 0 {
		checked := false
		for _, t := range targets {
			if prefix, ok := c.make.argsCmd[t]; ok {
				checked = true
				var words []shellWord
				for _, p := range prefix {
					words = append(words, shellWord{text: p})
				}
				problems = append(problems, c.checkArcbench(append(words, extra...))...)
			}
		}
		if !checked {
			problems = append(problems, fmt.Sprintf("ARGS given, but no target of %v passes $(ARGS) to arcbench", targets))
		}
	}
	return problems
}

func newDocChecker(t *testing.T) *docChecker {
	t.Helper()
	root, err := cliRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	return &docChecker{root: root, make: parseMakefile(string(mk))}
}

// TestDocsCommands: every command line of the README and docs/ runs a command
// the CLI has, with flags it has, or a make target the Makefile has.
func TestDocsCommands(t *testing.T) {
	c := newDocChecker(t)
	total := 0
	for _, path := range docFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(filepath.Join("..", ".."), path)
		cmds := findCommands(name, string(raw))
		total += len(cmds)
		for _, cmd := range cmds {
			for _, p := range c.check(cmd) {
				t.Errorf("%s: %s", cmd, p)
			}
		}
	}
	if total < 20 {
		t.Errorf("found only %d command lines in the README and docs/: is the checker still finding them?", total)
	}
}

// TestDocsCheckerCatches: the checker finds a made-up flag, subcommand and
// make target, and lets what exists, output lines and placeholders pass.
func TestDocsCheckerCatches(t *testing.T) {
	c := newDocChecker(t)
	md := strings.Join([]string{
		"# A page",
		"",
		"Start with `arcbench start --config NAME (--tasks FILE \\| --task ID ...) [--budget-usd X]`, or",
		"`arcbench start --config x --frobnicate 3`.", // line 4: no such flag
		"",
		"```text",
		"$ arcbench results run-1 --json | head -3",
		"arcbench output --nonsense lines are not commands", // output of a transcript
		"$ ARCBENCH_STAGE=x arcbench teleport RUN_ID",       // line 9: no such subcommand
		"$ make run ARGS=\"--count 5 --keep\"",
		"```",
		"",
		"```sh",
		"make synth|diff STAGE=sandbox-teal   # alternatives",
		"make deploy-everything STAGE=prod", // line 15: no such target
		"arcbench local run --count 3 \\",   // line 16
		"    --no-such-thing",               // continues line 16
		"echo '{}' | go run ./cmd/arcbench invoke initialize",
		"make run ARGS=\"--kep\"",                // line 19: not a flag of local run
		"arcbench report RUN_ID -o page.html -x", // line 20: no shorthand -x
		"LABEL=\"a b\" arcbench nosuch --json",   // line 21: no such subcommand
		"```",
	}, "\n")
	got := map[int][]string{}
	for _, cmd := range findCommands("page.md", md) {
		if ps := c.check(cmd); len(ps) > 0 {
			got[cmd.line] = ps
		}
	}
	want := map[int]string{
		4:  "arcbench start has no flag --frobnicate",
		9:  `arcbench has no subcommand "teleport"`,
		15: `the Makefile has no target "deploy-everything"`,
		16: "arcbench local run has no flag --no-such-thing",
		19: "arcbench local run has no flag --kep",
		20: "arcbench report has no flag -x",
		21: `arcbench has no subcommand "nosuch"`,
	}
	var lines []int
	for l := range got {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	for _, l := range lines {
		if want[l] == "" {
			t.Errorf("line %d: unexpected problems %q", l, got[l])
		}
	}
	for l, w := range want {
		if len(got[l]) != 1 || got[l][0] != w {
			t.Errorf("line %d: got %q, want [%q]", l, got[l], w)
		}
	}
	if n := len(findCommands("page.md", md)); n != 12 {
		t.Errorf("found %d command lines, want 12", n)
	}
}

// The README stays a page a newcomer reads through: under 10 KB, the rest in docs/.
func TestReadmeStaysShort(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 10*1024 {
		t.Errorf("README.md is %d bytes: keep it under 10 KB, moving detail to a page of docs/", len(raw))
	}
}
