"""The one-layer bilinear MLP of section 4.3 (Pearce et al., 2025).

    h      = W_e x                                  embed, no bias      (d_hidden,)
    g(h)   = (W_l h + b_l) * (W_r h + b_r)          bilinear layer      (d_hidden,)
    logits = W_u g(h)                               head, no bias       (d_output,)

Weights are stored PyTorch-style, out x in: W_e is (d_hidden, 784), W_l and W_r are
(d_hidden, d_hidden), W_u is (d_output, d_hidden). As in the paper's code, W_l and W_r are the
two halves of one Linear(d_hidden, 2*d_hidden) so that both come from one matmul.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn

D_INPUT = 784


class BilinearMLP(nn.Module):
    def __init__(self, d_hidden: int = 64, d_output: int = 2) -> None:
        """PyTorch's default init from its global generator; core.train.new_model draws the same
        init from a generator of its own, deterministic per Config.seed."""
        super().__init__()
        self.d_hidden, self.d_output = d_hidden, d_output
        self.embed = nn.Linear(D_INPUT, d_hidden, bias=False)
        self.bilinear = nn.Linear(d_hidden, 2 * d_hidden, bias=True)
        self.head = nn.Linear(d_hidden, d_output, bias=False)

    # --- the paper's names (views into the parameters, not copies) ---
    @property
    def W_e(self) -> Float[Tensor, "hid 784"]:
        return self.embed.weight

    @property
    def W_l(self) -> Float[Tensor, "hid hid"]:
        return self.bilinear.weight[: self.d_hidden]

    @property
    def W_r(self) -> Float[Tensor, "hid hid"]:
        return self.bilinear.weight[self.d_hidden :]

    @property
    def b_l(self) -> Float[Tensor, " hid"]:
        return self.bilinear.bias[: self.d_hidden]

    @property
    def b_r(self) -> Float[Tensor, " hid"]:
        return self.bilinear.bias[self.d_hidden :]

    @property
    def W_u(self) -> Float[Tensor, "cls hid"]:
        return self.head.weight

    def from_hidden(self, h: Float[Tensor, "n hid"]) -> Float[Tensor, "n cls"]:
        """Logits from the embedded input h = W_e x: (B, d_hidden) -> (B, d_output)."""
        left, right = self.bilinear(h).chunk(2, dim=-1)
        return self.head(left * right)

    def forward(self, x: Float[Tensor, "n 784"] | Float[Tensor, "n 28 28"]) -> Float[Tensor, "n cls"]:
        """(B, 784) or (B, 28, 28) float pixels in [0, 1] -> (B, d_output) logits."""
        return self.from_hidden(self.embed(x.flatten(start_dim=1)))
