// Package rank answers who am I, how many are we, and on which hosts: it
// reads the launcher's environment (MPICH Hydra, Cray PALS, PMIx, Open MPI,
// Slurm) and the scheduler's node lists (PBS_NODEFILE, Slurm hostlists).
// Every function takes getenv as a parameter so tests and callers decide
// where the environment comes from.
package rank

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxSize bounds the job size read from the environment: far above any
// machine copper targets, low enough that per-rank tables stay small.
const MaxSize = 1 << 20

// Identity is this process's place in the SPMD launch.
type Identity struct {
	Rank, Size int
	Source     string // the variables that gave Rank and Size, e.g. "PMI_RANK/PMI_SIZE"
}

// sizeVar is one place a launcher may put the job size. If onlyWith is
// set, the variable counts only when onlyWith is also set (it proves the
// variable belongs to the same launch, not to an enclosing allocation).
type sizeVar struct{ name, onlyWith string }

// rankSource is one launcher's rank variable and where its size lives.
type rankSource struct {
	rank  string
	sizes []sizeVar
}

// rankSources is the precedence order; the first rank variable that is set
// decides. Choices that are not obvious:
//
//   - PMI_RANK/PMI_SIZE come first: MPICH Hydra sets them, and so does
//     Cray PALS (Aurora's mpiexec), next to its own PALS_* variables.
//   - PALS_RANKID has no PALS world-size partner: PALS exports
//     PALS_LOCAL_SIZE, which is the count of ranks on this node, not in the
//     job, so it must not be used. The size is taken from PMI_SIZE only.
//   - PMIX_RANK: PMIx passes the job size through its API, not the
//     environment (there is no standard PMIX_SIZE). Open MPI's launcher sets
//     OMPI_COMM_WORLD_SIZE (OMPI_UNIVERSE_SIZE counts slots, not
//     processes, so it is not used); srun --mpi=pmix sets SLURM_NTASKS,
//     trusted only inside an srun step (SLURM_PROCID set), because an
//     sbatch script's SLURM_NTASKS describes the allocation, not the launch.
//   - SLURM_NPROCS is the older spelling of SLURM_NTASKS.
var rankSources = [...]rankSource{
	{"PMI_RANK", []sizeVar{{name: "PMI_SIZE"}}},
	{"PALS_RANKID", []sizeVar{{name: "PMI_SIZE"}}},
	{"PMIX_RANK", []sizeVar{
		{name: "OMPI_COMM_WORLD_SIZE"},
		{name: "SLURM_NTASKS", onlyWith: "SLURM_PROCID"},
		{name: "SLURM_NPROCS", onlyWith: "SLURM_PROCID"},
	}},
	{"OMPI_COMM_WORLD_RANK", []sizeVar{{name: "OMPI_COMM_WORLD_SIZE"}}},
	{"SLURM_PROCID", []sizeVar{{name: "SLURM_NTASKS"}, {name: "SLURM_NPROCS"}}},
}

// FromEnv finds this process's rank and the job size. The first launcher
// whose rank variable is set wins (see rankSources for the order); a rank
// without a size, a value that is not an integer, or a rank not below the
// size is an error naming the variables and values.
func FromEnv(getenv func(string) string) (Identity, error) {
	tried := make([]string, 0, len(rankSources))
	for _, src := range rankSources {
		raw := strings.TrimSpace(getenv(src.rank))
		if raw == "" {
			tried = append(tried, src.rank)
			continue
		}
		r, err := parseCount(src.rank, raw, 0)
		if err != nil {
			return Identity{}, err
		}
		sizeName, sizeRaw := "", ""
		for _, sv := range src.sizes {
			if sv.onlyWith != "" && strings.TrimSpace(getenv(sv.onlyWith)) == "" {
				continue
			}
			if v := strings.TrimSpace(getenv(sv.name)); v != "" {
				sizeName, sizeRaw = sv.name, v
				break
			}
		}
		if sizeName == "" {
			return Identity{}, fmt.Errorf("rank: %s=%s is set but no job size is (looked for %s)",
				src.rank, raw, sizeNames(src.sizes))
		}
		n, err := parseCount(sizeName, sizeRaw, 1)
		if err != nil {
			return Identity{}, err
		}
		if n > MaxSize {
			return Identity{}, fmt.Errorf("rank: %s=%d exceeds the supported maximum of %d", sizeName, n, MaxSize)
		}
		if r >= n {
			return Identity{}, fmt.Errorf("rank: %s=%d is not below %s=%d", src.rank, r, sizeName, n)
		}
		return Identity{Rank: r, Size: n, Source: src.rank + "/" + sizeName}, nil
	}
	return Identity{}, fmt.Errorf("rank: no launcher rank variable is set (tried %s); run under mpiexec or srun",
		strings.Join(tried, ", "))
}

// parseCount parses a decimal integer of at least min.
func parseCount(name, raw string, min int) (int, error) {
	v, err := strconv.Atoi(raw)
	if err != nil {
		return 0, fmt.Errorf("rank: %s=%q is not an integer", name, raw)
	}
	if v < min {
		return 0, fmt.Errorf("rank: %s=%d must be at least %d", name, v, min)
	}
	return v, nil
}

func sizeNames(sizes []sizeVar) string {
	names := make([]string, len(sizes))
	for i, sv := range sizes {
		names[i] = sv.name
		if sv.onlyWith != "" {
			names[i] += " (with " + sv.onlyWith + ")"
		}
	}
	return strings.Join(names, ", ")
}
