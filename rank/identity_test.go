package rank

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env makes a getenv from a map; missing keys read as "" like os.Getenv.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Identity
	}{
		{"hydra", map[string]string{"PMI_RANK": "3", "PMI_SIZE": "8"},
			Identity{3, 8, "PMI_RANK/PMI_SIZE"}},
		{"pals with pmi (Aurora mpiexec)", map[string]string{
			"PMI_RANK": "5", "PMI_SIZE": "16", "PALS_RANKID": "5", "PALS_LOCAL_SIZE": "1"},
			Identity{5, 16, "PMI_RANK/PMI_SIZE"}},
		{"pals rank, pmi size", map[string]string{"PALS_RANKID": "2", "PMI_SIZE": "4"},
			Identity{2, 4, "PALS_RANKID/PMI_SIZE"}},
		{"pmix under open mpi", map[string]string{"PMIX_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2",
			"OMPI_COMM_WORLD_RANK": "1", "OMPI_UNIVERSE_SIZE": "64"},
			Identity{1, 2, "PMIX_RANK/OMPI_COMM_WORLD_SIZE"}},
		{"pmix under srun", map[string]string{"PMIX_RANK": "6", "SLURM_PROCID": "6", "SLURM_NTASKS": "7"},
			Identity{6, 7, "PMIX_RANK/SLURM_NTASKS"}},
		{"pmix under srun, old spelling", map[string]string{"PMIX_RANK": "0", "SLURM_PROCID": "0", "SLURM_NPROCS": "2"},
			Identity{0, 2, "PMIX_RANK/SLURM_NPROCS"}},
		{"open mpi", map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"},
			Identity{0, 1, "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"}},
		{"slurm", map[string]string{"SLURM_PROCID": "9", "SLURM_NTASKS": "10", "SLURM_NPROCS": "99"},
			Identity{9, 10, "SLURM_PROCID/SLURM_NTASKS"}},
		{"slurm old spelling", map[string]string{"SLURM_PROCID": "9", "SLURM_NPROCS": "12"},
			Identity{9, 12, "SLURM_PROCID/SLURM_NPROCS"}},
		{"pmi beats slurm", map[string]string{"PMI_RANK": "1", "PMI_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			Identity{1, 2, "PMI_RANK/PMI_SIZE"}},
		{"open mpi beats slurm", map[string]string{"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4",
			"SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			Identity{3, 4, "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"}},
		{"spaces trimmed", map[string]string{"PMI_RANK": " 1 ", "PMI_SIZE": "2\n"},
			Identity{1, 2, "PMI_RANK/PMI_SIZE"}},
		{"empty value counts as unset", map[string]string{"PMI_RANK": "", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
			Identity{0, 1, "SLURM_PROCID/SLURM_NTASKS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(env(tt.env))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error
	}{
		{"nothing", nil, []string{"PMI_RANK, PALS_RANKID, PMIX_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID"}},
		{"rank without size", map[string]string{"PMI_RANK": "3"}, []string{"PMI_RANK=3", "PMI_SIZE"}},
		{"pals local size is not a world size", map[string]string{"PALS_RANKID": "0", "PALS_LOCAL_SIZE": "4"},
			[]string{"PALS_RANKID=0", "PMI_SIZE"}},
		{"pmix ignores an allocation-wide SLURM_NTASKS", map[string]string{"PMIX_RANK": "0", "SLURM_NTASKS": "4"},
			[]string{"PMIX_RANK=0", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS (with SLURM_PROCID)"}},
		{"non-integer rank", map[string]string{"PMI_RANK": "x1", "PMI_SIZE": "4"}, []string{`PMI_RANK="x1"`, "not an integer"}},
		{"non-integer size", map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "4.0"}, []string{`SLURM_NTASKS="4.0"`}},
		{"negative rank", map[string]string{"PMI_RANK": "-1", "PMI_SIZE": "4"}, []string{"PMI_RANK=-1", "at least 0"}},
		{"zero size", map[string]string{"PMI_RANK": "0", "PMI_SIZE": "0"}, []string{"PMI_SIZE=0", "at least 1"}},
		{"rank equal to size", map[string]string{"PMI_RANK": "4", "PMI_SIZE": "4"}, []string{"PMI_RANK=4", "PMI_SIZE=4"}},
		{"rank above size", map[string]string{"SLURM_PROCID": "10", "SLURM_NTASKS": "2"}, []string{"SLURM_PROCID=10", "SLURM_NTASKS=2"}},
		{"huge size", map[string]string{"PMI_RANK": "0", "PMI_SIZE": "99999999"}, []string{"PMI_SIZE=99999999", "maximum"}},
		{"bad first source does not fall through", map[string]string{"PMI_RANK": "zz", "PMI_SIZE": "2",
			"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, []string{`PMI_RANK="zz"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			require.Error(t, err)
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}
