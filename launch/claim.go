package launch

import (
	ctl "github.com/hpc-copper/copper/control"
)

// claimMount takes mount's lock for this rank, or adopts the one that a
// `copper-launch --local` parent took and handed down. It is held from
// before the all-gather until the node that copper-node starts holds it
// alone, so that no other launch can start a node there meanwhile and
// every node found serving mount while it is held is this launch's own.
func claimMount(mount string) (*ctl.Lock, error) {
	l, inherited, err := ctl.LockFromEnv(mount)
	if err != nil || inherited {
		return l, err
	}
	return ctl.LockMount(mount)
}

// claimAll takes the locks of mounts in order, all or none: two launches
// on the same mounts try them in the same order, so the first to take
// the first mount takes them all and the other fails without holding any.
func claimAll(mounts []string) ([]*ctl.Lock, error) {
	locks := make([]*ctl.Lock, 0, len(mounts))
	for _, m := range mounts {
		l, err := ctl.LockMount(m)
		if err != nil {
			closeLocks(locks)
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func closeLocks(locks []*ctl.Lock) {
	for _, l := range locks {
		_ = l.Close()
	}
}
