package hosts

import (
	"errors"
	"fmt"
	"strings"
)

// QuotePOSIX turns argv into one command line for a POSIX shell (sh, dash,
// bash, zsh, ksh): every argument comes out as exactly one word with no
// expansion of any kind. Arguments made only of safe characters stay bare;
// the rest are single-quoted, each embedded single quote being written as
// quote, backslash, quote, quote (close, escaped quote, reopen). The function
// works on bytes, not runes, so names that are not valid UTF-8 survive
// unchanged. The empty string becomes a pair of single quotes.
func QuotePOSIX(args ...string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		quotePOSIXWord(&b, a)
	}
	return b.String()
}

// posixSafe reports whether c may appear unquoted anywhere in a word.
// Deliberately small: '=' (zsh =cmd expansion at word start), '%' (fish job
// expansion), '~', '^', '!', '{', '}' , '[', '*', '?' and all whitespace and
// non-ASCII bytes force quoting.
func posixSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '-', '.', ',', ':', '/', '@', '+':
		return true
	}
	return false
}

func quotePOSIXWord(b *strings.Builder, a string) {
	if a == "" {
		b.WriteString("''")
		return
	}
	safe := true
	for i := 0; i < len(a); i++ {
		c := a[i]
		if posixSafe(c) || (c == '=' && i > 0) {
			continue
		}
		safe = false
		break
	}
	if safe {
		b.WriteString(a)
		return
	}
	b.WriteByte('\'')
	for i := 0; i < len(a); i++ {
		if a[i] == '\'' {
			b.WriteString(`'\''`)
			continue
		}
		b.WriteByte(a[i])
	}
	b.WriteByte('\'')
}

// ErrCmdUnquotable is returned (wrapped) by QuoteCmd for arguments that
// cannot be passed through cmd.exe safely. Windows file names cannot contain
// any of these characters, so rejecting them loses nothing.
var ErrCmdUnquotable = errors.New(`argument contains '"', CR, LF or NUL, which cannot be passed safely through cmd.exe`)

// cmdSafe reports whether c may stay unquoted on a cmd.exe command line and
// in MSVCRT/CommandLineToArgvW argument splitting.
func cmdSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', '-', '.', ':', '/', '\\', '+':
		return true
	}
	return false
}

// QuoteCmd turns argv into a command line for cmd.exe, the default shell of
// OpenSSH for Windows (sshd runs `cmd.exe /c <line>`), such that the program
// sees argv through the usual MSVCRT / CommandLineToArgvW splitting.
//
// How it reasons, per argument:
//   - Safe words ([A-Za-z0-9_.:/\+-]) stay bare.
//   - Otherwise runs of characters other than '%' are wrapped in "…". Inside
//     quotes cmd.exe treats & | < > ( ) ^ and spaces literally. Backslashes
//     are literal to MSVCRT except in front of a '"', so a run's trailing
//     backslashes are doubled because its closing quote follows them.
//   - '%' cannot be protected by quotes (cmd expands %VAR% everywhere, and
//     %% is not an escape on the command line). Each '%' is emitted outside
//     the quotes as ^%: percent expansion (phase 1) then sees a candidate
//     variable name ending in '^' between any two percent signs, which never
//     names a real variable and so is left alone on the command line; caret
//     processing (phase 2) then turns ^% into a literal %. MSVCRT
//     concatenates the quoted and unquoted pieces into one argument, so
//     "%PATH%" becomes ^%"PATH"^% and the program receives %PATH%.
//   - '!' is left inside quotes: cmd /c runs with delayed expansion off
//     unless the registry enables it (HKCU\Software\Microsoft\Command
//     Processor\DelayedExpansion); hosts with that setting are not supported.
//   - '"', CR, LF and NUL are rejected (ErrCmdUnquotable).
//
// cmd /c strips the first and the last quote of the line when the line
// begins with a quote and has more than two of them. So when the program
// name itself needs quotes, the whole line is wrapped in one extra pair of
// quotes which cmd.exe removes again.
func QuoteCmd(args ...string) (string, error) {
	var b strings.Builder
	for i, a := range args {
		if strings.ContainsAny(a, "\"\r\n\x00") {
			return "", fmt.Errorf("quote for cmd.exe: argument %d %q: %w", i, a, ErrCmdUnquotable)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		quoteCmdWord(&b, a)
	}
	line := b.String()
	if strings.HasPrefix(line, `"`) {
		line = `"` + line + `"`
	}
	return line, nil
}

func quoteCmdWord(b *strings.Builder, a string) {
	if a == "" {
		b.WriteString(`""`)
		return
	}
	safe := true
	for i := 0; i < len(a); i++ {
		if !cmdSafe(a[i]) {
			safe = false
			break
		}
	}
	if safe {
		b.WriteString(a)
		return
	}
	for len(a) > 0 {
		if a[0] == '%' {
			b.WriteString("^%")
			a = a[1:]
			continue
		}
		end := strings.IndexByte(a, '%')
		if end < 0 {
			end = len(a)
		}
		run := a[:end]
		a = a[end:]
		b.WriteByte('"')
		b.WriteString(run)
		// Backslashes right before the closing quote must be doubled.
		for j := len(run) - 1; j >= 0 && run[j] == '\\'; j-- {
			b.WriteByte('\\')
		}
		b.WriteByte('"')
	}
}
