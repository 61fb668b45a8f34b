package pmi

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeLine: any bytes a PMI-1 server sends decode without panic,
// and what decodes and can be re-encoded round-trips.
func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{hydraInit, hydraMaxes, hydraKVS, slurmInit, slurmMaxes,
		"cmd=get_result rc=-1 msg=key_nope_not_found value=unknown\n", "cmd=barrier_out\n",
		"cmd=get_result rc=0 value=a=b\n", "cmd=\n", "x\n", "cmd=a  b=c\n", "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// Through the reader too: its bound and EOF handling.
		if got, err := readLine(bufio.NewReaderSize(bytes.NewReader(line), 64)); err == nil {
			require.LessOrEqual(t, len(got), 64)
		}
		m, err := DecodeLine(line)
		if err != nil {
			return
		}
		require.NotEmpty(t, m.Cmd)
		enc, err := EncodeLine(m)
		if err != nil {
			return // a value with '=' decodes but is not ours to send
		}
		again, err := DecodeLine(enc)
		require.NoError(t, err, "%q", enc)
		require.Equal(t, m, again)
	})
}

// FuzzDecodeFrame: any PMI-2 frame decodes without panic; what decodes
// round-trips through EncodeFrame, ";;" escapes included.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		"6     cmd=a;", "20    cmd=kvs-fence-response;rc=0;",
		frameOf("cmd=kvs-get-response;found=TRUE;value=a;;b;rc=0;"),
		frameOf("cmd=fullinit-response;pmi-version=2;rank=1;size=2;rc=0;"),
		"abcdef", "0     ", "99999999", frameOf("cmd=x;k=v"), frameOf("cmd=x;;k=v;"),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := readFrame(bytes.NewReader(data))
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(body), maxLine)
		m, err := DecodeFrameBody(body)
		if err != nil {
			return
		}
		enc, err := EncodeFrame(m)
		if err != nil {
			require.ErrorContains(t, err, "cannot hold a ';'")
			return
		}
		again, err := readFrame(bytes.NewReader(enc))
		require.NoError(t, err)
		back, err := DecodeFrameBody(again)
		require.NoError(t, err, "%q", again)
		require.Equal(t, m, back)
	})
}
