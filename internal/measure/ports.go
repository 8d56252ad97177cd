package measure

import "github.com/tokengate/tokengate/internal/freeport"

// FreePort returns a loopback port that was free a moment ago, below the
// ephemeral range (internal/freeport).
func FreePort() (int, error) {
	ports, err := freeport.Pick(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}
