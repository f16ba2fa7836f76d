#include "myotwin/forward/conductor/sparse_solver.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <cholmod.h>

#include <Eigen/IterativeLinearSolvers>
#include <Eigen/SparseCholesky>

#include "myotwin/core/error.hpp"
#include "myotwin/core/log.hpp"
#include "myotwin/core/timer.hpp"

namespace myotwin::forward {

std::string to_string(SolverMethod method) {
  switch (method) {
  case SolverMethod::automatic:
    return "automatic";
  case SolverMethod::direct:
    return "direct";
  case SolverMethod::iterative:
    return "iterative";
  }
  return "?";
}

SolverMethod solver_method_from_string(const std::string& name) {
  for (const auto m : {SolverMethod::automatic, SolverMethod::direct, SolverMethod::iterative})
    if (to_string(m) == name)
      return m;
  throw BadInput("solver method \"" + name + "\": expected one of automatic, direct, iterative");
}

std::string to_string(Preconditioner preconditioner) {
  switch (preconditioner) {
  case Preconditioner::jacobi:
    return "jacobi";
  case Preconditioner::incomplete_cholesky:
    return "incomplete_cholesky";
  }
  return "?";
}

Preconditioner preconditioner_from_string(const std::string& name) {
  for (const auto p : {Preconditioner::jacobi, Preconditioner::incomplete_cholesky})
    if (to_string(p) == name)
      return p;
  throw BadInput("preconditioner \"" + name + "\": expected one of jacobi, incomplete_cholesky");
}

namespace {

/// Smallest acceptable CHOLMOD reciprocal condition estimate (min(L_ii)^2 / max(L_ii)^2).
/// Grounded stiffness matrices of connected meshes stay far above it (their diagonal spans the
/// conductivity contrast times the spread of element sizes); a floating part gives ~1e-16.
constexpr double min_rcond = 1e-13;

using IncompleteCholesky =
    Eigen::IncompleteCholesky<double, Eigen::Lower, Eigen::NaturalOrdering<int>>;

std::string ordering_name(int ordering) {
  switch (ordering) {
  case CHOLMOD_NATURAL:
    return "natural";
  case CHOLMOD_GIVEN:
    return "given";
  case CHOLMOD_AMD:
    return "AMD";
  case CHOLMOD_METIS:
    return "METIS";
  case CHOLMOD_NESDIS:
    return "NESDIS";
  case CHOLMOD_COLAMD:
    return "COLAMD";
  case CHOLMOD_POSTORDERED:
    return "postordered";
  default:
    return "unknown";
  }
}

/// Memory of a CHOLMOD factor [bytes]: values and integer structure.
double factor_memory_bytes(const cholmod_factor* l) {
  const double idx = sizeof(SuiteSparse_long);
  if (l->is_super)
    return 8.0 * static_cast<double>(l->xsize) + idx * static_cast<double>(l->ssize) +
           idx * 3.0 * static_cast<double>(l->nsuper + 1) + idx * 2.0 * static_cast<double>(l->n);
  return 12.0 * static_cast<double>(l->nzmax) + idx * 6.0 * static_cast<double>(l->n);
}

} // namespace

struct SpdSolver::Impl {
  SolverParams params;
  SolverReport report;
  Eigen::Index n = 0;
  // Direct.
  cholmod_common common{};
  bool common_started = false;
  cholmod_sparse* a = nullptr;
  cholmod_factor* l = nullptr;
  // Iterative.
  Eigen::SparseMatrix<double> matrix;
  std::optional<IncompleteCholesky> ichol; ///< incomplete Cholesky preconditioner, or
  Eigen::VectorXd inv_diagonal;            ///< Jacobi preconditioner

  ~Impl() {
    if (common_started) {
      if (l != nullptr)
        cholmod_l_free_factor(&l, &common);
      if (a != nullptr)
        cholmod_l_free_sparse(&a, &common);
      cholmod_l_finish(&common);
    }
  }

  /// Copies the upper triangle of `m` into a CHOLMOD matrix (stype 1).
  void copy_upper(const Eigen::SparseMatrix<double>& m) {
    std::int64_t nnz_upper = 0;
    for (Eigen::Index j = 0; j < m.outerSize(); ++j)
      for (Eigen::SparseMatrix<double>::InnerIterator it(m, j); it; ++it)
        nnz_upper += it.row() <= j ? 1 : 0;
    a = cholmod_l_allocate_sparse(static_cast<std::size_t>(n), static_cast<std::size_t>(n),
                                  static_cast<std::size_t>(nnz_upper), 1, 1, 1, CHOLMOD_REAL,
                                  &common);
    if (a == nullptr)
      throw NumericalError("SpdSolver: CHOLMOD could not allocate the matrix (" +
                           std::to_string(nnz_upper) + " entries)");
    auto* p = static_cast<SuiteSparse_long*>(a->p);
    auto* i = static_cast<SuiteSparse_long*>(a->i);
    auto* x = static_cast<double*>(a->x);
    SuiteSparse_long k = 0;
    for (Eigen::Index j = 0; j < n; ++j) {
      p[j] = k;
      for (Eigen::SparseMatrix<double>::InnerIterator it(m, j); it; ++it)
        if (it.row() <= j) {
          i[k] = it.row();
          x[k] = it.value();
          ++k;
        }
    }
    p[n] = k;
  }

  /// Analyses; returns the estimated factor memory [bytes].
  double analyse() {
    Stopwatch watch;
    l = cholmod_l_analyze(a, &common);
    if (l == nullptr || common.status < CHOLMOD_OK)
      throw NumericalError("SpdSolver: CHOLMOD analysis failed (status " +
                           std::to_string(common.status) + ") for a matrix of " +
                           std::to_string(n) + " rows");
    report.analyse_s = watch.elapsed_s();
    report.ordering = ordering_name(l->ordering);
    report.flops = common.fl;
    const double n_values = l->is_super ? static_cast<double>(l->xsize) : std::max(common.lnz, 0.0);
    report.estimated_factor_bytes =
        l->is_super ? factor_memory_bytes(l)
                    : 12.0 * n_values + 6.0 * sizeof(SuiteSparse_long) * static_cast<double>(n);
    return report.estimated_factor_bytes;
  }

  void factorise() {
    Stopwatch watch;
    const int ok = cholmod_l_factorize(a, l, &common);
    if (common.status == CHOLMOD_OUT_OF_MEMORY)
      throw NumericalError("SpdSolver: CHOLMOD factorisation ran out of memory (estimated factor " +
                           format_number(report.estimated_factor_bytes / 1e9) +
                           " GB): lower memory_budget_bytes or use the iterative method");
    if (!ok || common.status < CHOLMOD_OK)
      throw NumericalError("SpdSolver: CHOLMOD factorisation failed (status " +
                           std::to_string(common.status) + ") for a matrix of " +
                           std::to_string(n) + " rows");
    if (common.status == CHOLMOD_NOT_POSDEF)
      throw NumericalError("SpdSolver: the matrix is not positive definite (CHOLMOD stopped at "
                           "column " +
                           std::to_string(l->minor) + " of " + std::to_string(n) +
                           "): is the mesh connected and one node grounded?");
    // A singular matrix (an ungrounded or floating part) may factorise with a pivot at round-off
    // level instead of failing; CHOLMOD's estimate min(L_ii)^2 / max(L_ii)^2 exposes it.
    report.rcond_estimate = cholmod_l_rcond(l, &common);
    if (!(report.rcond_estimate > min_rcond))
      throw NumericalError("SpdSolver: the matrix is singular to working precision (CHOLMOD's "
                           "reciprocal condition estimate " +
                           format_number(report.rcond_estimate) +
                           " <= " + format_number(min_rcond) +
                           "): is the mesh connected and one node grounded?");
    cholmod_l_free_sparse(&a, &common); // the solves need only the factor
    report.factor_s = watch.elapsed_s();
    report.factor_nnz =
        l->is_super ? static_cast<std::int64_t>(l->xsize) : static_cast<std::int64_t>(common.lnz);
    report.factor_bytes = factor_memory_bytes(l);
    report.method = SolverMethod::direct;
  }

  void setup_iterative(const Eigen::SparseMatrix<double>& m) {
    if (l != nullptr)
      cholmod_l_free_factor(&l, &common);
    if (a != nullptr)
      cholmod_l_free_sparse(&a, &common);
    Stopwatch watch;
    matrix = m;
    matrix.makeCompressed();
    if (params.preconditioner == Preconditioner::incomplete_cholesky) {
      ichol.emplace();
      ichol->compute(matrix);
      if (ichol->info() != Eigen::Success)
        throw NumericalError("SpdSolver: the incomplete Cholesky preconditioner failed for a "
                             "matrix of " +
                             std::to_string(n) +
                             " rows (even with shifts): is the matrix positive definite?");
      report.factor_nnz = ichol->matrixL().nonZeros();
    } else {
      inv_diagonal = matrix.diagonal();
      for (Eigen::Index i = 0; i < n; ++i)
        if (!(inv_diagonal[i] > 0.0))
          throw NumericalError("SpdSolver: diagonal entry " + std::to_string(i) + " = " +
                               format_number(inv_diagonal[i]) +
                               ": a positive definite matrix has a positive diagonal");
      inv_diagonal = inv_diagonal.cwiseInverse();
      report.factor_nnz = n;
    }
    report.factor_s = watch.elapsed_s();
    report.factor_bytes = 12.0 * static_cast<double>(report.factor_nnz) +
                          8.0 * 4.0 * static_cast<double>(n) +
                          12.0 * static_cast<double>(matrix.nonZeros());
    report.ordering = "natural";
    report.method = SolverMethod::iterative;
  }

  /// z = M^-1 r.
  void precondition(const Eigen::VectorXd& r, Eigen::VectorXd& z) const {
    if (ichol)
      z = ichol->solve(r);
    else
      z = inv_diagonal.cwiseProduct(r);
  }

  /// Preconditioned CG for column `j` of `b` (serial arithmetic).
  ColumnStats pcg(const Eigen::Ref<const Eigen::VectorXd>& b, Eigen::Ref<Eigen::VectorXd> x,
                  Eigen::Index column) const {
    x.setZero();
    const double b_norm = b.norm();
    if (b_norm == 0.0)
      return {};
    Eigen::VectorXd r = b;
    Eigen::VectorXd z(n);
    precondition(r, z);
    Eigen::VectorXd p = z;
    Eigen::VectorXd q(n);
    double rz = r.dot(z);
    const double target = params.cg_relative_tolerance * b_norm;
    double r_norm = b_norm;
    std::int64_t it = 0;
    while (it < params.cg_max_iterations) {
      ++it;
      q.noalias() = matrix * p;
      const double alpha = rz / p.dot(q);
      x += alpha * p;
      r -= alpha * q;
      r_norm = r.norm();
      if (!(r_norm > target) || !std::isfinite(r_norm))
        break;
      precondition(r, z);
      const double rz_new = r.dot(z);
      p = z + (rz_new / rz) * p;
      rz = rz_new;
    }
    if (!(r_norm <= target))
      throw NumericalError(
          "SpdSolver: conjugate gradients did not converge for right-hand "
          "side " +
          std::to_string(column) + ": relative residual " + format_number(r_norm / b_norm) +
          " after " + std::to_string(it) +
          " iterations; expected <= " + format_number(params.cg_relative_tolerance) +
          " (raise cg_max_iterations or use the direct method)");
    return {it, r_norm / b_norm};
  }
};

SpdSolver::SpdSolver(const Eigen::SparseMatrix<double>& matrix, const SolverParams& params)
    : impl_(std::make_unique<Impl>()) {
  Eigen::setNbThreads(1);
  if (matrix.rows() != matrix.cols() || matrix.rows() == 0)
    throw BadInput("SpdSolver: matrix is " + std::to_string(matrix.rows()) + " x " +
                   std::to_string(matrix.cols()) + ": expected square and non-empty");
  if (!(params.memory_budget_bytes > 0.0))
    throw BadInput("SpdSolver: memory_budget_bytes = " + format_number(params.memory_budget_bytes) +
                   ": must be > 0");
  if (!(params.cg_relative_tolerance > 0.0 && params.cg_relative_tolerance < 1.0))
    throw BadInput("SpdSolver: cg_relative_tolerance = " +
                   format_number(params.cg_relative_tolerance) + ": must be in (0, 1)");
  if (params.cg_max_iterations < 1)
    throw BadInput("SpdSolver: cg_max_iterations = " + std::to_string(params.cg_max_iterations) +
                   ": must be >= 1");
  if (params.block_columns < 1)
    throw BadInput("SpdSolver: block_columns = " + std::to_string(params.block_columns) +
                   ": must be >= 1");
  Impl& s = *impl_;
  s.params = params;
  s.n = matrix.rows();
  s.report.n_rows = s.n;
  s.report.matrix_nnz = matrix.nonZeros();
  if (params.method != SolverMethod::iterative) {
    cholmod_l_start(&s.common);
    s.common_started = true;
    s.common.supernodal = CHOLMOD_SUPERNODAL;
    s.common.print = 0; // failures are reported by the exceptions below
    s.common.final_ll = 1;
    s.copy_upper(matrix);
    const double estimate = s.analyse();
    if (params.method == SolverMethod::automatic && estimate > params.memory_budget_bytes) {
      log_info("volume conductor: Cholesky factor estimated at ", format_number(estimate / 1e9),
               " GB > budget ", format_number(params.memory_budget_bytes / 1e9),
               " GB: using conjugate gradients");
      s.setup_iterative(matrix);
      return;
    }
    if (params.before_factorising)
      params.before_factorising(s.report);
    s.factorise();
    return;
  }
  s.setup_iterative(matrix);
}

SpdSolver::~SpdSolver() = default;

const SolverReport& SpdSolver::report() const {
  return impl_->report;
}

Eigen::Index SpdSolver::size() const {
  return impl_->n;
}

Eigen::MatrixXd SpdSolver::solve(const Eigen::Ref<const Eigen::MatrixXd>& rhs,
                                 const ProgressCallback& progress, const std::string& task,
                                 std::vector<ColumnStats>* stats) {
  Impl& s = *impl_;
  if (rhs.rows() != s.n)
    throw BadInput("SpdSolver::solve: right-hand side has " + std::to_string(rhs.rows()) +
                   " rows: expected " + std::to_string(s.n));
  const Eigen::Index n_cols = rhs.cols();
  Eigen::MatrixXd x(s.n, n_cols);
  std::vector<ColumnStats> column_stats(static_cast<std::size_t>(n_cols));
  ProgressReporter reporter(progress, task, static_cast<std::size_t>(n_cols));
  if (s.report.method == SolverMethod::direct) {
    const Eigen::Index block = s.params.block_columns;
    for (Eigen::Index c0 = 0; c0 < n_cols; c0 += block) {
      const Eigen::Index nc = std::min(block, n_cols - c0);
      cholmod_dense* b =
          cholmod_l_allocate_dense(static_cast<std::size_t>(s.n), static_cast<std::size_t>(nc),
                                   static_cast<std::size_t>(s.n), CHOLMOD_REAL, &s.common);
      if (b == nullptr)
        throw NumericalError("SpdSolver::solve: CHOLMOD could not allocate " + std::to_string(nc) +
                             " right-hand sides");
      Eigen::Map<Eigen::MatrixXd>(static_cast<double*>(b->x), s.n, nc) = rhs.middleCols(c0, nc);
      cholmod_dense* xs = cholmod_l_solve(CHOLMOD_A, s.l, b, &s.common);
      cholmod_l_free_dense(&b, &s.common);
      if (xs == nullptr)
        throw NumericalError("SpdSolver::solve: CHOLMOD solve failed (status " +
                             std::to_string(s.common.status) + ") for right-hand sides " +
                             std::to_string(c0) + ".." + std::to_string(c0 + nc - 1));
      x.middleCols(c0, nc) =
          Eigen::Map<const Eigen::MatrixXd>(static_cast<double*>(xs->x), s.n, nc);
      cholmod_l_free_dense(&xs, &s.common);
      reporter.advance(static_cast<std::size_t>(nc));
    }
  } else {
    // Columns in parallel; the lowest failing column is reported.
    std::vector<std::string> errors(static_cast<std::size_t>(n_cols));
#pragma omp parallel for schedule(dynamic, 1)
    for (Eigen::Index j = 0; j < n_cols; ++j) {
      try {
        column_stats[static_cast<std::size_t>(j)] = s.pcg(rhs.col(j), x.col(j), j);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(j)] = e.what();
      }
      reporter.advance();
    }
    for (const auto& e : errors)
      if (!e.empty())
        throw NumericalError(e);
  }
  reporter.finish();
  if (stats != nullptr)
    *stats = std::move(column_stats);
  return x;
}

} // namespace myotwin::forward
