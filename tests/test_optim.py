"""kdlab.training.optim.FusedAdam takes exactly torch.optim.Adam's steps."""
import pytest
import torch

from kdlab.training.optim import FusedAdam


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.Linear(3, 3))
    return net


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_steps_equal_torch_adams(weight_decay):
    ours, theirs = _net(), _net()
    theirs.load_state_dict(ours.state_dict())
    unused = [ours[3], theirs[3]]  # never in the loss: no gradient, so neither optimizer may touch it
    opt_ours = FusedAdam(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-2, weight_decay=weight_decay)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for step in range(8):
        lr = 1e-2 * (0.5 if step >= 4 else 1.0)  # the engine's schedule writes param_groups[0]["lr"]
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.param_groups[0]["lr"] = lr
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net[:3](x), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    before = _net()[3]
    assert torch.equal(unused[0].weight, before.weight) and torch.equal(unused[1].weight, before.weight)


def test_zero_grad_clears_gradients():
    net = _net()
    opt = FusedAdam(net.parameters())
    net(torch.randn(2, 6)).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_no_parameters_is_an_error_and_no_gradients_a_no_op():
    with pytest.raises(ValueError, match="empty parameter list"):
        FusedAdam([])
    net = _net()
    before = [p.clone() for p in net.parameters()]
    FusedAdam(net.parameters()).step()  # no backward yet: nothing to do, as torch.optim.Adam
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
