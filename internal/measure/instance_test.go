package measure

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// testTool is a tool whose measurement starts one instance and uses its
// admin API; its tests run it as the measuring tools' tests run theirs.
var testTool = Tool[*testReport]{Name: "measuretest", Measure: measureAdmin}

func TestMain(m *testing.M) { testTool.TestMain(m) }

type testReport struct {
	orgs    int    // organizations listed after one was created
	refusal string // the error for an organization that does not exist
}

func (r *testReport) Print(w io.Writer) { fmt.Fprintf(w, "measuretest: p99 -, %d orgs\n", r.orgs) }

func (r *testReport) Failed() bool { return false }

func measureAdmin(setup Setup) (*testReport, error) {
	in, err := setup.StartInstance(InstanceConfig{Name: "the instance", Dir: setup.Dir, Prefix: "/measuretest"})
	if err != nil {
		return nil, err
	}
	defer in.Stop()
	if _, err := in.Admin("POST", "/orgs", map[string]string{"id": "m", "name": "measuretest"}); err != nil {
		return nil, err
	}
	list, err := in.Admin("GET", "/orgs", nil)
	if err != nil {
		return nil, err
	}
	orgs, _ := list["orgs"].([]any)
	_, err = in.Admin("GET", "/orgs/missing", nil)
	if err == nil {
		return nil, fmt.Errorf("GET /orgs/missing succeeded")
	}
	return &testReport{orgs: len(orgs), refusal: err.Error()}, nil
}

// TestInstance starts an instance from the test binary on an embedded etcd
// and calls its admin API.
func TestInstance(t *testing.T) {
	rep := testTool.Test(t, 1)
	if rep.orgs != 1 {
		t.Fatalf("%d organizations listed, want 1", rep.orgs)
	}
	if !strings.HasPrefix(rep.refusal, "GET /orgs/missing on the instance: 404") {
		t.Fatalf("refusal: %s", rep.refusal)
	}
}

// TestCaddyfile checks the configs the tools' instances get.
func TestCaddyfile(t *testing.T) {
	const global = "{\n\tadmin 127.0.0.1:2019\n\tpersist_config off\n\ttokengate {\n\t\tetcd {\n" +
		"\t\t\tendpoints http://127.0.0.1:1 http://127.0.0.1:2\n\t\t\tprefix /p\n\t\t}\n"
	for _, c := range []struct {
		name string
		cfg  InstanceConfig
		want string
	}{
		{"plain", InstanceConfig{Prefix: "/p"}, global + "\t}\n}\n"},
		{"options", InstanceConfig{Prefix: "/p", Options: []string{"webhook_allow_private"}},
			global + "\t\twebhook_allow_private\n\t}\n}\n"},
		{"sites", InstanceConfig{Prefix: "/p", Sites: "http://127.0.0.1:80 {\n\trespond 200\n}\n"},
			global + "\t}\n}\n\nhttp://127.0.0.1:80 {\n\trespond 200\n}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.cfg.caddyfile(2019, []string{"http://127.0.0.1:1", "http://127.0.0.1:2"})
			if got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}
