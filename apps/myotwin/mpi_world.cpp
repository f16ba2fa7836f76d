#include "mpi_world.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>

#ifdef MYOTWIN_HAVE_MPI
#include <mpi.h>
#endif

#include "myotwin/core/error.hpp"

namespace myotwin::app::mpi {

namespace {

/// The first of the environment variables `names` that holds a positive integer, else 0.
int first_count(std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (end != v && n > 0 && n < std::numeric_limits<int>::max())
        return static_cast<int>(n);
    }
  return 0;
}

#ifdef MYOTWIN_HAVE_MPI
void check(int code, const char* what) {
  if (code != MPI_SUCCESS)
    throw Error(std::string("MPI: ") + what + " failed (code " + std::to_string(code) + ")");
}
#endif

} // namespace

bool built_with_mpi() {
#ifdef MYOTWIN_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launcher_world_size() {
  const int n = first_count({"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"});
  return n > 0 ? n : 1;
}

int launcher_local_size() {
  const int n = first_count(
      {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"});
  return n > 0 ? n : 1;
}

World& World::get() {
  static World world;
  return world;
}

World::World() {
  const int n = launcher_world_size();
  if (n <= 1)
    return;
#ifdef MYOTWIN_HAVE_MPI
  // Only the main thread calls MPI (a sweep's rank 0 runs its own share of the work in a second
  // thread that never does).
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  initialised_ = true;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
#else
  throw Error("started by an MPI launcher with " + std::to_string(n) +
              " ranks, but this myotwin was built without MPI (CMake option MYOTWIN_MPI off or "
              "MPI not found); every rank would do the whole work in the same folder. Rebuild "
              "with MPI (libopenmpi-dev) or run it without mpirun");
#endif
}

World::~World() {
#ifdef MYOTWIN_HAVE_MPI
  if (initialised_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0)
      MPI_Finalize();
  }
#endif
}

#ifdef MYOTWIN_HAVE_MPI

void World::send(int to, int tag, const std::string& bytes) const {
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD),
        "MPI_Send");
}

std::string World::receive(int from, int tag, int* source) const {
  MPI_Status status;
  check(MPI_Probe(from < 0 ? MPI_ANY_SOURCE : from, tag, MPI_COMM_WORLD, &status), "MPI_Probe");
  int n = 0;
  check(MPI_Get_count(&status, MPI_CHAR, &n), "MPI_Get_count");
  std::string bytes(static_cast<std::size_t>(n), '\0');
  check(MPI_Recv(bytes.data(), n, MPI_CHAR, status.MPI_SOURCE, tag, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE),
        "MPI_Recv");
  if (source != nullptr)
    *source = status.MPI_SOURCE;
  return bytes;
}

std::optional<int> World::probe(int tag) const {
  int flag = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (flag == 0)
    return std::nullopt;
  return status.MPI_SOURCE;
}

void World::send_doubles(int to, int tag, const std::vector<double>& values) const {
  // In pieces of at most 2^27 doubles (1 GiB): MPI counts are int.
  const std::size_t piece = std::size_t{1} << 27;
  const std::uint64_t n = values.size();
  check(MPI_Send(&n, 1, MPI_UINT64_T, to, tag, MPI_COMM_WORLD), "MPI_Send");
  for (std::size_t at = 0; at < values.size(); at += piece)
    check(MPI_Send(values.data() + at, static_cast<int>(std::min(piece, values.size() - at)),
                   MPI_DOUBLE, to, tag, MPI_COMM_WORLD),
          "MPI_Send");
}

std::vector<double> World::receive_doubles(int from, int tag) const {
  const std::size_t piece = std::size_t{1} << 27;
  std::uint64_t n = 0;
  check(MPI_Recv(&n, 1, MPI_UINT64_T, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  std::vector<double> values(n);
  for (std::size_t at = 0; at < values.size(); at += piece)
    check(MPI_Recv(values.data() + at, static_cast<int>(std::min(piece, values.size() - at)),
                   MPI_DOUBLE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Recv");
  return values;
}

void World::barrier() const {
  if (initialised_)
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void World::abort(int code) const {
  if (initialised_)
    MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

#else // a world of one: nothing to send to

namespace {
[[noreturn]] void no_peers() {
  throw Error("MPI: a message to another rank in a world of one (a programming error)");
}
} // namespace

void World::send(int, int, const std::string&) const {
  no_peers();
}
std::string World::receive(int, int, int*) const {
  no_peers();
}
std::optional<int> World::probe(int) const {
  return std::nullopt;
}
void World::send_doubles(int, int, const std::vector<double>&) const {
  no_peers();
}
std::vector<double> World::receive_doubles(int, int) const {
  no_peers();
}
void World::barrier() const {}
void World::abort(int code) const {
  std::exit(code);
}

#endif

void share_lead_field_solves(const mpi::World& world, Eigen::Index n_nodes,
                             forward::LeadFieldRunOptions& lo) {
  const auto range_of = [&world](int rank, Eigen::Index n, Eigen::Index block) {
    const Eigen::Index n_blocks = (n + block - 1) / block;
    const auto size = static_cast<Eigen::Index>(world.size());
    const Eigen::Index b0 = n_blocks * rank / size, b1 = n_blocks * (rank + 1) / size;
    const Eigen::Index first = std::min(n, b0 * block);
    return std::pair<Eigen::Index, Eigen::Index>{first, std::min(n, b1 * block) - first};
  };
  constexpr int tag_columns = 3;
  lo.share.range = [&world, range_of](Eigen::Index n, Eigen::Index block) {
    return range_of(world.rank(), n, block);
  };
  const Eigen::Index block = lo.conductor.solver.block_columns;
  lo.share.gather = [&world, range_of, n_nodes, block](const Eigen::MatrixXd& mine,
                                                       Eigen::Index n) -> Eigen::MatrixXd {
    if (world.rank() != 0) {
      world.send_doubles(0, tag_columns,
                         std::vector<double>(mine.data(), mine.data() + mine.size()));
      return {};
    }
    Eigen::MatrixXd all(n_nodes, n);
    all.leftCols(mine.cols()) = mine; // rank 0's columns come first
    for (int r = 1; r < world.size(); ++r) {
      const auto [first, count] = range_of(r, n, block);
      const std::vector<double> theirs = world.receive_doubles(r, tag_columns);
      if (static_cast<Eigen::Index>(theirs.size()) != n_nodes * count)
        throw Error("leadfield: rank " + std::to_string(r) + " sent " +
                    std::to_string(theirs.size()) + " values, expected " +
                    std::to_string(n_nodes * count));
      all.middleCols(first, count) =
          Eigen::Map<const Eigen::MatrixXd>(theirs.data(), n_nodes, count);
    }
    return all;
  };
  lo.writes_cache = world.rank() == 0;
}

} // namespace myotwin::app::mpi
