package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

// maxFile bounds what --file reads; the API takes at most 1 MiB anyway.
const maxFile = 4 << 20

// fileBody starts a request body from --file: a JSON object holding the
// request's fields (a policy document, say), or a JSON list that is the
// value of the action's fileField (a policy's statements). Flags given
// beside it override its fields, except that the list may be given only
// once.
func (a action) fileBody(fs *pflag.FlagSet) (map[string]any, error) {
	body := map[string]any{}
	if a.fileField == "" || !fs.Changed("file") {
		return body, nil
	}
	name, _ := fs.GetString("file")
	data, err := readFile(name)
	if err != nil {
		return nil, usageErrorf("--file: %v", err)
	}
	switch first := firstByte(data); first {
	case '[':
		if flag := (field{json: a.fileField}).flagName(); fs.Changed(flag) {
			return nil, usageErrorf("give the %s once: in --file or in --%s", a.fileField, flag)
		}
		list, err := parseJSONList("file", data)
		if err != nil {
			return nil, err
		}
		body[a.fileField] = list
	case '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, usageErrorf("--file %s is not valid JSON: %v", name, err)
		}
		for k, v := range fields {
			body[k] = v
		}
	default:
		return nil, usageErrorf("--file %s must hold a JSON object or a JSON list of %s", name, a.fileField)
	}
	return body, nil
}

// readFile reads name, or stdin for "-".
func readFile(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxFile)
	}
	return data, nil
}

// firstByte is the first byte of data that is not white space.
func firstByte(data []byte) byte {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return 0
	}
	return data[0]
}
