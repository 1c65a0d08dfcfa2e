package pools

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestParseCapacity(t *testing.T) {
	tests := []struct {
		in      string
		want    int32
		wantErr string
	}{
		{in: "40", want: 40},
		{in: "0", want: 0},
		{in: "-3", wantErr: "capacity must not be negative, got -3"},
		{in: "many", wantErr: `capacity "many" is not a whole number`},
		{in: "1.5", wantErr: `capacity "1.5" is not a whole number`},
		{in: "3000000000", wantErr: `capacity "3000000000" is not a whole number`},
	}
	for _, tc := range tests {
		got, err := parseCapacity(tc.in)
		switch {
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("parseCapacity(%q) = %d, %v; want error %q", tc.in, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("parseCapacity(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestAsk(t *testing.T) {
	tests := []struct {
		answer  string
		wantErr string
	}{
		{answer: "yes\n"},
		{answer: "Y\n"},
		{answer: "no\n", wantErr: `not deleted: the answer was "no", not yes`},
		{answer: "\n", wantErr: `not deleted: the answer was "", not yes`},
		{answer: "", wantErr: `not deleted: the answer was "", not yes`}, // end of input
	}
	for _, tc := range tests {
		var prompt bytes.Buffer
		err := ask(strings.NewReader(tc.answer), &prompt, "Pool web holds 3 Nodes")
		if got := errString(err); got != tc.wantErr {
			t.Errorf("answer %q: error %q, want %q", tc.answer, got, tc.wantErr)
		}
		if want := "Pool web holds 3 Nodes.\nDelete it? Type yes to delete: "; prompt.String() != want {
			t.Errorf("prompt %q, want %q", prompt.String(), want)
		}
	}
}

// Only a terminal is asked; a pipe or a reader is a script's stdin.
func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.Close(), w.Close() })
	if isTerminal(r) {
		t.Error("a pipe is taken for a terminal")
	}
	if isTerminal(strings.NewReader("yes\n")) {
		t.Error("a strings.Reader is taken for a terminal")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
