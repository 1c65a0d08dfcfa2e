package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-dev/strata/internal/cli/suggest"
)

// usageError is a mistake in the command line itself: Run prints the usage
// line after it.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// strict makes the command tree refuse what cobra lets pass, so that
// scripts can rely on the exit code:
//   - an unknown subcommand of a group (`strata machines lst`): cobra checks
//     subcommands only at the root, and prints a group's help and exits 0
//     when the group cannot run itself;
//   - argument and flag errors are usageErrors, printed with the usage line.
func strict(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		strict(c)
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	args := cmd.Args
	if cmd.HasSubCommands() {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if len(a) > 0 && (args == nil || args(c, a) != nil) {
				return unknownCommand(c, a[0])
			}
			return nil
		}
		if !cmd.Runnable() {
			// A group alone shows its commands; runnable, cobra checks its
			// arguments (above) instead of showing help for any of them.
			cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
	}
	if cmd.Args == nil {
		return
	}
	check := cmd.Args
	cmd.Args = func(c *cobra.Command, a []string) error {
		if err := check(c, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// unknownCommand says that name is no subcommand of c, with the nearest
// ones (cobra's own suggestions list every command two edits away, as "get"
// before "list" for "lst").
func unknownCommand(c *cobra.Command, name string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if suggestions := suggest.Closest(name, names); len(suggestions) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t")
	}
	return errors.New(msg)
}

// usageLine is the usage of cmd in one line; a group's names its commands.
func usageLine(cmd *cobra.Command) string {
	if cmd.HasAvailableSubCommands() {
		return fmt.Sprintf("%s COMMAND (`%s --help` lists them)", cmd.CommandPath(), cmd.CommandPath())
	}
	return cmd.UseLine()
}

// numbersAsArguments lets a negative number through as an argument
// (`strata pools scale web -3`): pflag reads "-3" as the shorthand flags 3
// and fails with "unknown shorthand flag", but no strata flag has a digit
// for a shorthand, so such a word can only be a number. From the first
// such number on, the arguments go after "--", where pflag takes every word
// as an argument, in their order; the flags among them, with their values,
// stay before it. A number that is a flag's value (--capacity -3) stays.
func numbersAsArguments(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	lookup := flagLookup(cmd)
	first := -1
	for i := 0; i < len(args) && first < 0; i++ {
		switch s := args[i]; {
		case s == "--":
			return args
		case negativeNumber(s):
			first = i
		default:
			i += takesValue(s, lookup)
		}
	}
	if first < 0 {
		return args
	}
	out, rest := slices.Clone(args[:first]), []string{}
	for i := first; i < len(args); i++ {
		switch s := args[i]; {
		case s == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(s, "-") && len(s) > 1 && !negativeNumber(s):
			out = append(out, s)
			if takesValue(s, lookup) == 1 && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		default:
			rest = append(rest, s)
		}
	}
	return append(append(out, "--"), rest...)
}

// negativeNumber says whether s is a number with a minus sign, as "-3" or "-1.5".
func negativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' || s[1] < '0' || s[1] > '9' {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// flagLookup finds a flag of cmd, its own or inherited, by name or (for a
// one-letter name) by shorthand.
func flagLookup(cmd *cobra.Command) func(name string, shorthand bool) *pflag.Flag {
	sets := []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()}
	return func(name string, shorthand bool) *pflag.Flag {
		for _, fs := range sets {
			var f *pflag.Flag
			switch {
			case !shorthand:
				f = fs.Lookup(name)
			case len(name) == 1: // ShorthandLookup panics on more
				f = fs.ShorthandLookup(name)
			}
			if f != nil {
				return f
			}
		}
		return nil
	}
}

// takesValue is 1 when s is a flag whose value is the next word (--hub
// x, -o json), else 0 (--output=json, -ojson, a boolean, not a flag).
func takesValue(s string, lookup func(string, bool) *pflag.Flag) int {
	switch {
	case strings.HasPrefix(s, "--") && len(s) > 2:
		if strings.Contains(s, "=") {
			return 0
		}
		if f := lookup(s[2:], false); f != nil && f.NoOptDefVal == "" {
			return 1
		}
	case strings.HasPrefix(s, "-") && len(s) > 1 && !negativeNumber(s):
		shorthands := []rune(s[1:])
		for i, r := range shorthands {
			f := lookup(string(r), true)
			if f == nil {
				return 0
			}
			if f.NoOptDefVal == "" {
				// The rest of the word is the value, else the next word.
				if i == len(shorthands)-1 {
					return 1
				}
				return 0
			}
		}
	}
	return 0
}
