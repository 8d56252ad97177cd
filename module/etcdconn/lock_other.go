//go:build !unix

package etcdconn

// Elsewhere etcd's own file locks are the only guard.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() {}
