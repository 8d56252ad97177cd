package admin

import (
	"os"
	"testing"

	"github.com/tokengate/tokengate/internal/reliability"
	"github.com/tokengate/tokengate/internal/testenv"
)

// TestMain gives the tests a temporary HOME and XDG directories, and
// removes the tokengate binary that tests running a second gateway
// instance build.
func TestMain(m *testing.M) { os.Exit(testenv.Run(func() int { return reliability.Main(m) })) }
