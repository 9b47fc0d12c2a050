# Reference values for cxrmask.stats from pROC (Robin et al. 2011), the implementation the paper's
# DeLong comparisons are usually run with. Regenerate tests/data/proc_reference.json with
#   Rscript tests/data/proc_reference.R tests/data/proc_reference.json
# Datasets are generated here from a fixed seed, rounded so they contain ties (which pROC counts one
# half), and written with the outputs so the Python tests need no R.
suppressPackageStartupMessages({
  library(pROC)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript proc_reference.R OUTPUT.json")

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20251223)

make <- function(name, y, a, b) list(name = name, y = as.integer(y), a = a, b = b)
datasets <- list()

y <- rep(c(1, 0), c(15, 25))
a <- round(rnorm(40) + y, 1)
datasets[[1]] <- make("ties_small", y, a, round(0.5 * a + 0.7 * rnorm(40) + 0.3 * y, 1))

y <- rbinom(150, 1, 0.4)
rate <- function(shift) pmin(5, pmax(1, round(2.5 + shift * y + rnorm(150))))
datasets[[2]] <- make("ordinal", y, rate(1.0), rate(0.6))

y <- as.integer(runif(400) < 0.08)
a <- round(rnorm(400) + 1.2 * y, 3)
datasets[[3]] <- make("unbalanced", y, a, round(a + rnorm(400), 3))

y <- rbinom(80, 1, 0.5)
datasets[[4]] <- make("inverted", y, round(rnorm(80) - 0.8 * y, 2), round(runif(80), 2))

y <- rbinom(250, 1, 0.3)
datasets[[5]] <- make("large_effect", y, round(rnorm(250) + 2.0 * y, 2), round(rnorm(250) + 0.3 * y, 2))

fit <- function(y, s) roc(response = y, predictor = s, levels = c(0, 1), direction = "<", quiet = TRUE)
interval <- function(r, level) {
  ci <- as.numeric(ci.auc(r, conf.level = level, method = "delong"))
  list(conf_level = level, low = ci[1], auc = ci[2], high = ci[3])
}

for (i in seq_along(datasets)) {
  d <- datasets[[i]]
  ra <- fit(d$y, d$a)
  rb <- fit(d$y, d$b)
  test <- roc.test(ra, rb, method = "delong", paired = TRUE)
  datasets[[i]]$proc <- list(
    auc_a = as.numeric(auc(ra)),
    auc_b = as.numeric(auc(rb)),
    # roc.test reports auc_a - auc_b: its z is minus cxrmask's, its CI that of -delta.
    z_a_minus_b = unname(test$statistic),
    p_value = test$p.value,
    diff_ci_95 = as.numeric(test$conf.int),
    var_a = var(ra, method = "delong"),
    var_b = var(rb, method = "delong"),
    ci_a = list(interval(ra, 0.95), interval(ra, 0.90)),
    ci_b = list(interval(rb, 0.95), interval(rb, 0.90))
  )
}

out <- list(
  generator = "tests/data/proc_reference.R",
  proc_version = as.character(packageVersion("pROC")),
  r_version = R.version.string,
  datasets = datasets
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(17), pretty = TRUE), args[1])
