package pmi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Message is one PMI command or reply: its cmd and the other key=value
// fields, in wire order.
type Message struct {
	Cmd    string
	Fields []Field
}

// Field is one key=value pair of a message.
type Field struct{ Key, Value string }

// Get returns the value of key and whether the message has it.
func (m Message) Get(key string) (string, bool) {
	for _, f := range m.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// maxLine bounds one PMI-1 line and one PMI-2 frame: far above the
// servers' own limits (Hydra: 1024-byte values, 64-byte keys), low enough
// that a hostile or broken peer cannot make us buffer without end.
const maxLine = 64 << 10

// frameHeader is the PMI-2 length prefix: six ASCII digits, left-aligned
// and space-padded ("%-6d"), as MPICH's and Slurm's servers write it.
const frameHeader = 6

// EncodeLine renders m as one PMI-1 line ("cmd=put kvsname=k key=a
// value=b\n"). PMI-1 has no escaping: a key or value with a space, '=' or
// newline cannot be sent, so it is an error naming the field.
func EncodeLine(m Message) ([]byte, error) {
	if err := checkToken("cmd", m.Cmd, " =\n"); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("cmd=" + m.Cmd)
	for _, f := range m.Fields {
		if err := checkToken("key of "+m.Cmd, f.Key, " =\n"); err != nil {
			return nil, err
		}
		if strings.ContainsAny(f.Value, " \n") || strings.Contains(f.Value, "=") {
			return nil, fmt.Errorf("pmi: %s: field %s=%q: PMI-1 values cannot hold a space, '=' or a newline", m.Cmd, f.Key, f.Value)
		}
		b.WriteString(" " + f.Key + "=" + f.Value)
	}
	b.WriteByte('\n')
	if b.Len() > maxLine {
		return nil, fmt.Errorf("pmi: %s: line of %d bytes exceeds %d", m.Cmd, b.Len(), maxLine)
	}
	return []byte(b.String()), nil
}

// DecodeLine parses one PMI-1 line, with or without its newline: fields
// separated by spaces, each key=value (the value runs to the next space
// and may itself contain '='), the first one cmd.
func DecodeLine(line []byte) (Message, error) {
	text := strings.TrimSuffix(string(line), "\n")
	if strings.ContainsAny(text, "\n\x00") {
		return Message{}, fmt.Errorf("pmi: line %q holds a newline or NUL inside", clip(text))
	}
	var m Message
	for i, tok := range strings.Fields(text) {
		key, value, ok := strings.Cut(tok, "=")
		if !ok || key == "" {
			return Message{}, fmt.Errorf("pmi: line %q: field %q is not key=value", clip(text), clip(tok))
		}
		if i == 0 {
			if key != "cmd" || value == "" || strings.Contains(value, "=") {
				return Message{}, fmt.Errorf("pmi: line %q: first field %q is not cmd=NAME", clip(text), clip(tok))
			}
			m.Cmd = value
			continue
		}
		if _, dup := m.Get(key); dup || key == "cmd" {
			return Message{}, fmt.Errorf("pmi: %s: field %s appears twice", m.Cmd, key)
		}
		m.Fields = append(m.Fields, Field{key, value})
	}
	if m.Cmd == "" {
		return Message{}, fmt.Errorf("pmi: empty line %q", clip(text))
	}
	return m, nil
}

// EncodeFrame renders m as one PMI-2 frame: the length header, then
// "cmd=NAME;key=value;...;". The PMI-2 text says a ';' inside a value is
// written ";;", but MPICH Hydra 4.0 does not undo that (it cuts the value
// at the first ';'), so a value holding ';' is refused instead.
func EncodeFrame(m Message) ([]byte, error) {
	if err := checkToken("cmd", m.Cmd, ";="); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("cmd=" + m.Cmd + ";")
	for _, f := range m.Fields {
		if err := checkToken("key of "+m.Cmd, f.Key, ";="); err != nil {
			return nil, err
		}
		if strings.Contains(f.Value, ";") {
			return nil, fmt.Errorf("pmi: %s: field %s=%q: PMI-2 values cannot hold a ';' (servers differ on its escape)", m.Cmd, f.Key, f.Value)
		}
		b.WriteString(f.Key + "=" + f.Value + ";")
	}
	if b.Len() > maxLine {
		return nil, fmt.Errorf("pmi: %s: frame of %d bytes exceeds %d", m.Cmd, b.Len(), maxLine)
	}
	return []byte(fmt.Sprintf("%-*d", frameHeader, b.Len()) + b.String()), nil
}

// DecodeFrameBody parses a PMI-2 frame body (the bytes after the length
// header): key=value fields each ended by ';', the first field cmd. A
// ";;" is read as a ';' inside the value, as MPICH's own client reads it.
func DecodeFrameBody(body []byte) (Message, error) {
	text := string(body)
	var m Message
	for first := true; text != ""; first = false {
		key, rest, ok := strings.Cut(text, "=")
		if !ok || key == "" || strings.Contains(key, ";") {
			return Message{}, fmt.Errorf("pmi: frame %q: field %q is not key=value;", clip(string(body)), clip(text))
		}
		var value strings.Builder
		end := -1
		for i := 0; i < len(rest); i++ {
			if rest[i] != ';' {
				value.WriteByte(rest[i])
				continue
			}
			if i+1 < len(rest) && rest[i+1] == ';' {
				value.WriteByte(';')
				i++
				continue
			}
			end = i
			break
		}
		if end < 0 {
			return Message{}, fmt.Errorf("pmi: frame %q: field %s has no closing ';'", clip(string(body)), key)
		}
		text = rest[end+1:]
		if first {
			if key != "cmd" || value.Len() == 0 || strings.ContainsAny(value.String(), ";=") {
				return Message{}, fmt.Errorf("pmi: frame %q: first field %s is not cmd=NAME", clip(string(body)), key)
			}
			m.Cmd = value.String()
			continue
		}
		if _, dup := m.Get(key); dup || key == "cmd" {
			return Message{}, fmt.Errorf("pmi: %s: field %s appears twice", m.Cmd, key)
		}
		m.Fields = append(m.Fields, Field{key, value.String()})
	}
	if m.Cmd == "" {
		return Message{}, errors.New("pmi: empty frame")
	}
	return m, nil
}

// readLine reads one PMI-1 line, at most maxLine bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes", r.Size())
	case errors.Is(err, io.EOF) && len(line) > 0:
		return nil, fmt.Errorf("connection closed inside a line (%q): %w", clip(string(line)), io.ErrUnexpectedEOF)
	case err != nil:
		return nil, err
	}
	return line, nil
}

// readFrame reads one PMI-2 frame body.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(hdr[:])))
	if err != nil || n <= 0 || n > maxLine {
		return nil, fmt.Errorf("frame length header %q: want 1..%d", string(hdr[:]), maxLine)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return body, nil
}

// checkToken rejects an empty name or one holding a separator.
func checkToken(what, s, bad string) error {
	if s == "" || strings.ContainsAny(s, bad) {
		return fmt.Errorf("pmi: %s %q is empty or holds one of %q", what, s, bad)
	}
	return nil
}

// clip shortens what an error quotes from a peer.
func clip(s string) string {
	const n = 120
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
