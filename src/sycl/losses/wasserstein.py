"""The SyCL list-wise loss: a Gaussian 2-Wasserstein (Frechet) distance between score and label lists."""

import math

import torch

from sycl.losses.base import GradedListLoss


class WassersteinLoss(GradedListLoss):
    """Squared 2-Wasserstein distance between Gaussians fitted to predicted and target lists.

    P = softmax(scores / temperature) row-wise and T = softmax(Y) row-wise, with Y the labels
    expanded block-diagonally (in-batch negatives get label 0, labels get no temperature). The B
    rows of P and the B rows of T are treated as samples in R^(B*K); a Gaussian (mean, covariance
    with the 1/(B-1) factor) is fitted to each and the loss is

        ||mu_P - mu_T||^2 + Tr(Sigma_P) + Tr(Sigma_T) - 2 Tr((Sigma_P^1/2 Sigma_T Sigma_P^1/2)^1/2)

    in float64. The last trace is the sum of square roots of the eigenvalues of the B x B matrix
    (C_P^T C_T)(C_T^T C_P), C = centred samples^T / sqrt(B-1) of shape [B*K, B], so no
    (B*K) x (B*K) matrix is ever formed: the cost is O(B^2 * B*K + B^3).

    Surprising but faithful to the reference (``ws2`` in Esfandiarpoor et al., 2025, arXiv
    2503.23239): the distance compares the *set* of predicted lists with the *set* of target lists,
    so it is invariant to permuting the queries of a batch. The defaults reproduce the reference;
    ``label_temperature``, ``in_batch_negatives`` and ``in_batch_weight`` are the options of
    ``GradedListLoss``.

    A column dropped from row i by ``column_mask`` gets zero predicted and zero target mass in that row
    (score and label -inf before the softmaxes), so row i's two distributions are renormalised over its
    other columns. The column stays a dimension of R^(B*K), where row i's samples are 0 on it; unlike the
    per-query losses this is not the same as deleting the column, which the shared dimensions forbid.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        label_temperature: float = 1.0,
        in_batch_negatives: str = "label0",
        in_batch_weight: float = 1.0,
        eigenvalue_epsilon: float = 1e-15,
    ):
        super().__init__(temperature, label_temperature, in_batch_negatives, in_batch_weight)
        # Added before the square root, as the reference does, so the gradient at a zero eigenvalue stays finite.
        self.eigenvalue_epsilon = eigenvalue_epsilon

    min_queries = 2

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        if scores.shape[0] < self.min_queries:
            raise ValueError("WassersteinLoss fits a covariance over the batch's queries and needs at least 2 queries")
        candidate_scores, candidate_labels, in_batch, kept = self.candidates(
            scores.double(), labels.double(), column_mask
        )
        predicted = self.predicted_distribution(candidate_scores, kept)
        target = self.target_distribution(candidate_labels, in_batch, kept)
        return frechet_distance_of_rows(predicted, target, self.eigenvalue_epsilon).to(scores.dtype)


def frechet_distance_of_rows(
    samples_p: torch.Tensor, samples_t: torch.Tensor, eigenvalue_epsilon: float
) -> torch.Tensor:
    """Squared Frechet distance between Gaussians fitted to the rows of two sample matrices.

    samples_p, samples_t: [B, D] with B samples of dimension D each. Returns a scalar.
    """
    scale = 1.0 / math.sqrt(samples_p.shape[0] - 1)
    mean_p, mean_t = samples_p.mean(0), samples_t.mean(0)
    centred_p = (samples_p - mean_p) * scale  # C_P^T: [B, D]
    centred_t = (samples_t - mean_t) * scale  # C_T^T: [B, D]
    cross = centred_p @ centred_t.T  # C_P^T C_T: [B, B]
    eigenvalues = torch.linalg.eigvalsh(cross @ cross.T).clamp_min(0.0)
    trace_of_root = torch.sqrt(eigenvalues + eigenvalue_epsilon).sum()
    return (mean_p - mean_t).pow(2).sum() + centred_p.pow(2).sum() + centred_t.pow(2).sum() - 2.0 * trace_of_root
