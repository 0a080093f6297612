"""TorchModel: a ``torch.nn.Module`` behind the BaseModel interface.

The module is a torchvision image model (``architecture``) or any user module
(``class_path``). Training batches arrive flat, (N, C*H*W) float32, as the loop
gathers them; they become (N, C, H, W) tensors without a copy
(``torch.from_numpy`` and a view). Checkpoints hold the module's ``state_dict``
under its own names, in its own dtypes, written with safetensors.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mlx.config.experiment import thaw
from mlx.config.names import IMAGE_FAMILIES
from mlx.errors import CheckpointError, ModelError, NotTrainedError
from mlx.models import checkpoint
from mlx.models._imports import check_signature, construct, import_module_class
from mlx.models.base import BaseModel
from mlx.models.torch import require_torch
from mlx.models.torch._build import build_image_model
from mlx.models.torch.contract import check_outputs, weights_mismatch
from mlx.models.torch.devices import Placement, configure_threads, resolve
from mlx.numerics.optim import DEFAULT_CONFIG, OPTIMIZERS, Optimizer, get_optimizer

__all__ = ["TorchModel", "check_module_params", "torch_optimizer"]

#: Samples per forward pass in predict and validation.
EVAL_BATCH = 256
_MODEL_METADATA = checkpoint.weights_metadata("torch")


def torch_optimizer(config: Mapping[str, Any], parameters: Sequence[Any]) -> Any:
    """The ``torch.optim`` optimizer of an mlx optimizer config (same names and
    defaults as :data:`mlx.optim.OPTIMIZERS`); its learning rate is set per step."""
    torch = require_torch()
    kind = str(config.get("optimizer_type", "sgd"))
    if kind not in OPTIMIZERS:
        raise ModelError(f"Unknown optimizer type {kind!r}.")
    _, defaults = OPTIMIZERS[kind]
    hyper = {key: config.get(key, default) for key, default in defaults.items()}
    lr = config.get("learning_rate", 0.01)
    lr = float(lr) if isinstance(lr, (int, float)) else 0.0
    if "betas" in hyper:
        hyper["betas"] = tuple(float(b) for b in hyper["betas"])
    classes = {
        "sgd": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
    }
    return classes[kind](list(parameters), lr=lr, **hyper)


def check_module_params(cls: type, class_path: str, params: Mapping[str, Any]) -> None:
    """A ModelError when the constructor of the module ``cls`` does not take
    ``params``; nothing is built."""
    check_signature(
        cls, params, f"Cannot build {class_path} with parameters {dict(params)}"
    )


def _step_seed(seed: int, step: int) -> int:
    """The RNG seed of training step ``step``: dropout, stochastic depth and any
    other draw of a step depend on (seed, step) only, never on how many steps ran
    in this process."""
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


class TorchModel(BaseModel):
    """A torch module trained and saved by the harness.

    Parameters
    ----------
    architecture : a torchvision variant (``resnet18``, ``efficientnet_b0``, ...), or
        None with ``class_path``.
    class_path : ``"package.module:ClassName"`` of a ``torch.nn.Module`` subclass;
        ``module_params`` go to its constructor.
    task : "classification" (cross-entropy on logits; predictions are softmax
        probabilities) or "regression" (mean squared error).
    num_classes, in_channels, dropout, pretrained : the image model's head, stem,
        classifier dropout and starting weights (see mlx.models.torch._build).
    input_shape : (C, H, W) of one sample; flat input is viewed as this shape.
        None passes input to the module as it comes, (N, n_features).
    device, precision : see :mod:`mlx.models.torch.devices`.
    seed : initial weights and every per-step random draw derive from it.
    """

    model_type = "torch"
    _dtype = np.float32
    dtype = np.float32

    def __init__(
        self,
        architecture: str | None = None,
        class_path: str | None = None,
        module_params: Mapping[str, Any] | None = None,
        task: str = "classification",
        num_classes: int | None = None,
        in_channels: int | None = None,
        input_shape: Sequence[int] | None = None,
        pretrained: bool = False,
        dropout: float | None = None,
        device: str = "auto",
        precision: str = "32",
        seed: int = 0,
    ) -> None:
        self.architecture_name = architecture
        self.class_path = class_path
        self.module_params = dict(module_params or {})
        self.task = task
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.input_shape = list(input_shape) if input_shape is not None else None
        self.pretrained = pretrained
        self.dropout = dropout
        self.device = device
        self.precision = precision
        self.seed = seed
        self._build()

    # --- construction ------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "architecture": self.architecture_name,
            "class_path": self.class_path,
            "module_params": dict(self.module_params),
            "task": self.task,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "input_shape": self.input_shape,
            "pretrained": self.pretrained,
            "dropout": self.dropout,
            "device": self.device,
            "precision": self.precision,
            "seed": self.seed,
        }

    def _build(self) -> None:
        torch = require_torch()
        configure_threads()
        if self.task not in ("classification", "regression"):
            raise ModelError(
                f"TorchModel task must be 'classification' or 'regression'; "
                f"got {self.task!r}."
            )
        if (self.architecture_name is None) == (self.class_path is None):
            raise ModelError(
                "TorchModel needs exactly one of architecture (a torchvision "
                "variant) and class_path (a torch.nn.Module subclass)."
            )
        if self.input_shape is not None and (
            len(self.input_shape) not in (1, 3)
            or not all(isinstance(d, int) and d > 0 for d in self.input_shape)
        ):
            raise ModelError(
                f"TorchModel input_shape must be (C, H, W); got {self.input_shape}."
            )
        self.placement_: Placement = resolve(self.device, self.precision)
        if self.placement_.device.type == "cpu":
            # bit-identical reruns on CPU; the few CPU kernels without a
            # deterministic version raise instead of silently varying
            torch.use_deterministic_algorithms(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            self.module_ = self._make_module()
        self.module_.to(self.placement_.device)
        self._shape: tuple[int, ...] | None = (
            tuple(self.input_shape) if self.input_shape else None
        )
        self._n_features = int(np.prod(self.input_shape)) if self.input_shape else None  # type: ignore[assignment]
        self.params_ = {}
        self.optimizer_ = get_optimizer(dict(DEFAULT_CONFIG))
        self.optimizer_state_ = None
        self.torch_optimizer_ = torch_optimizer(
            self.optimizer_.config, self.module_.parameters()
        )
        self.scaler_ = self.placement_.grad_scaler()
        self.schedule_: Callable[[int], float] = lambda step: 0.01
        self.grad_clip_norm: float | None = None
        self.step_ = 0
        self.is_trained = False
        self._mode: bool | None = None
        #: the shape of one sample's outputs, once a batch has shown it
        self._tail: tuple[int, ...] | None = None
        #: the class count of the data it is trained on, when known (a run's)
        self.data_classes: int | None = None

    def _make_module(self) -> Any:
        torch = require_torch()
        if self.architecture_name is not None:
            channels = self.in_channels
            if channels is None:
                channels = self.input_shape[0] if self.input_shape else 3
            return build_image_model(
                self.architecture_name,
                num_classes=int(self.num_classes or 1000),
                in_channels=int(channels),
                dropout=self.dropout,
                pretrained=bool(self.pretrained),
            )
        cls = import_module_class(self.class_path)
        check_module_params(cls, str(self.class_path), self.module_params)
        module = construct(cls, self.module_params)
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"{self.class_path} did not build a torch.nn.Module.")
        if next(module.parameters(), None) is None:
            raise ModelError(
                f"{self.class_path} has no parameters (no torch.nn.Parameter), so "
                "there is nothing to train."
            )
        return module

    def architecture(self) -> dict[str, Any]:
        return {
            "module": self.architecture_name or self.class_path,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "input_shape": self.input_shape,
        }

    @property
    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.module_.parameters()))

    def environment(self) -> dict[str, Any]:
        """Device, precision and torch versions, for environment.json."""
        return {"torch_backend": self.placement_.describe()}

    # --- optimizer ---------------------------------------------------------------

    def set_optimizer(self, optimizer: Optimizer) -> None:
        """Install the torch optimizer matching ``optimizer`` (an mlx Optimizer:
        its ``config`` names the rule and hyperparameters). A constant learning
        rate is used as is; a schedule comes through :meth:`configure_training`."""
        config = getattr(optimizer, "config", None)
        if not isinstance(config, Mapping) or "optimizer_type" not in config:
            raise ModelError(
                "TorchModel.set_optimizer needs an optimizer from "
                f"mlx.optim.get_optimizer; got {optimizer!r}."
            )
        self.optimizer_ = optimizer
        self.optimizer_state_ = None
        self.torch_optimizer_ = torch_optimizer(config, self.module_.parameters())
        lr = config.get("learning_rate")
        if isinstance(lr, (int, float)):
            rate = float(lr)
            self.schedule_ = lambda step: rate

    def configure_training(
        self, schedule: Callable[[int], float], grad_clip_norm: float | None = None
    ) -> None:
        """The learning-rate schedule (step -> rate, evaluated at the number of
        updates already taken, like mlx.optim) and the gradient-norm clip."""
        self.schedule_ = schedule
        self.grad_clip_norm = grad_clip_norm

    # --- data --------------------------------------------------------------------

    def _tensor(self, X: np.ndarray) -> Any:
        torch = require_torch()
        x = torch.from_numpy(X)
        if self._shape is not None and x.dim() == 2:
            x = x.view(x.shape[0], *self._shape)
        return x.to(self.placement_.device, non_blocking=True)

    def _target(self, y: np.ndarray, n: int) -> Any:
        torch = require_torch()
        if self.task == "classification":
            labels = np.asarray(y)
            if labels.dtype != np.int64:
                labels = labels.astype(np.int64)
            target = torch.from_numpy(labels)
        else:
            target = torch.from_numpy(np.asarray(y, dtype=np.float32))
        if target.shape[0] != n:
            raise ModelError(
                f"TorchModel expects y with one row per sample of X ({n}); got "
                f"shape {tuple(target.shape)}."
            )
        return target.to(self.placement_.device, non_blocking=True)

    def _check_outputs(
        self, output: Any, n: int, where: str, target: Any = None
    ) -> None:
        """The module's outputs of one batch (``target``: its training targets)
        fit the loss and the predictions: see :func:`check_outputs`. Every batch,
        as a module's outputs may change with the batch size or the mode."""
        tail, top = self._tail, None
        basis = "" if tail is None else " (as in its earlier batches)"
        if self.task == "classification":
            if self.data_classes is not None:
                tail = (self.data_classes,)
                basis = f" (the data has {self.data_classes} classes)"
            elif target is not None and n:
                top = int(target.max())
        elif target is not None:
            tail, basis = tuple(target.shape[1:]), ", the shape of the targets"
        self._tail = check_outputs(
            output,
            module=str(self.class_path or self.architecture_name),
            task=self.task,
            n=n,
            where=where,
            tail=tail,
            basis=basis,
            top=top,
        )

    def _loss(self, output: Any, target: Any) -> Any:
        import torch.nn.functional as F

        if self.task == "classification":
            return F.cross_entropy(output, target)
        if output.dim() == 2 and output.shape[1] == 1 and target.dim() == 1:
            output = output[:, 0]
        return F.mse_loss(output.float(), target)

    # --- the interface -----------------------------------------------------------

    def train_step(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        torch = require_torch()
        X = np.asarray(X)
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=np.float32)
        x = self._tensor(X)
        target = self._target(y, x.shape[0])
        if self._mode is not True:
            self.module_.train()
            self._mode = True
        torch.manual_seed(_step_seed(self.seed, self.step_))
        rate = float(self.schedule_(self.step_))
        optimizer = self.torch_optimizer_
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        try:
            with self.placement_.autocast():
                output = self.module_(x)
                where = f"at training step {self.step_ + 1} (a batch of {len(X)})"
                self._check_outputs(output, len(X), where, target)
                loss = self._loss(output, target)
        except ValueError as exc:
            if x.shape[0] == 1 and "more than 1 value per channel" in str(exc):
                raise ModelError(
                    "A training batch holds 1 sample, and BatchNorm needs at least "
                    "2 in training mode; change training.batch_size so that the "
                    "last batch of an epoch is not a single sample."
                ) from None
            raise
        scaler = self.scaler_
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.grad_clip_norm:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(
                    self.module_.parameters(), self.grad_clip_norm
                )
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if self.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(
                    self.module_.parameters(), self.grad_clip_norm
                )
            optimizer.step()
        self.step_ += 1
        self.is_trained = True
        return {"loss": float(loss.detach())}

    def predict(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes) or regression values, from
        flat (n_samples, C*H*W) or image (n_samples, C, H, W) input; eval mode
        (BatchNorm running statistics, no dropout), in batches on the device."""
        return self._infer(*self._checked_input(X))

    def predict_logits(self, X: Any) -> np.ndarray:
        """The module's outputs as :meth:`predict` computes them, before the
        softmax: logits (n_samples, n_classes) in float64, or regression values."""
        return self._infer(*self._checked_input(X), logits=True)

    def _checked_input(self, X: Any) -> tuple[np.ndarray, tuple[int, ...] | None]:
        """``X`` as flat float32 rows, with the sample shape to view them as."""
        self._check_trained()
        array = np.asarray(X)
        shape = self._shape
        if array.ndim == 4:
            if shape is not None and tuple(array.shape[1:]) != shape:
                raise ModelError(
                    f"TorchModel expects images of shape {shape}; got "
                    f"{tuple(array.shape[1:])}."
                )
            shape = tuple(array.shape[1:])
            array = array.reshape(array.shape[0], -1)
        return self._check_X(array), shape

    def forward(self, X: np.ndarray) -> np.ndarray:
        return self._infer(X, self._shape)

    def _infer(
        self, X: np.ndarray, shape: tuple[int, ...] | None, *, logits: bool = False
    ) -> np.ndarray:
        torch = require_torch()
        if self._mode is not False:
            self.module_.eval()
            self._mode = False
        X = np.ascontiguousarray(X, dtype=np.float32)
        outputs = []
        with torch.inference_mode(), self.placement_.autocast():
            for start in range(0, len(X), EVAL_BATCH):
                x = torch.from_numpy(X[start : start + EVAL_BATCH])
                if shape is not None:
                    x = x.view(x.shape[0], *shape)
                out = self.module_(x.to(self.placement_.device, non_blocking=True))
                where = (
                    f"in eval mode (validation or prediction; samples {start + 1}-"
                    f"{start + len(x)} of {len(X)})"
                )
                self._check_outputs(out, len(x), where)
                outputs.append(out.float())
        result = torch.cat(outputs).double()
        if self.task == "classification":
            if not logits:
                result = torch.softmax(result, dim=1)
        elif result.dim() == 2 and result.shape[1] == 1:
            result = result[:, 0]
        return result.cpu().numpy()

    # --- checkpoints -------------------------------------------------------------

    def _config_document(self) -> dict[str, Any]:
        document = super()._config_document()
        document["n_features"] = self._n_features
        # the logits an evaluation of the loaded model must get per sample
        document["data_classes"] = self.data_classes
        return document

    def snapshot(self) -> Callable[[str | os.PathLike[str]], None]:
        """Copy the weights and optimizer state now; the returned function writes
        them (model.safetensors: the module's state_dict; optimizer.safetensors:
        torch.optim's per-parameter state, its scalars as JSON metadata)."""
        from safetensors.torch import save

        if not self.is_trained and not self.pretrained:
            raise NotTrainedError(
                "This TorchModel has no trained weights to save yet: train or load "
                "it first."
            )
        weights = {
            name: value.detach().to("cpu", copy=True).contiguous()
            for name, value in self.module_.state_dict().items()
        }
        opt_tensors, opt_metadata = self._optimizer_tensors()
        config = self._config_document()

        def write(path: str | os.PathLike[str]) -> None:
            contents = {
                checkpoint.MODEL_FILE: save(weights, metadata=_MODEL_METADATA),
                checkpoint.OPTIMIZER_FILE: save(opt_tensors, metadata=opt_metadata),
            }
            checkpoint.write_checkpoint_files(path, config, contents)

        return write

    def save(self, path: str | os.PathLike[str]) -> None:
        self.snapshot()(path)

    def _parameter_names(self) -> list[str]:
        return [name for name, _ in self.module_.named_parameters()]

    def _optimizer_tensors(self) -> tuple[dict[str, Any], dict[str, str]]:
        torch = require_torch()
        state = self.torch_optimizer_.state_dict()
        names = self._parameter_names()
        tensors: dict[str, Any] = {}
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{names[index]}.{key}"] = (
                        value.detach().to("cpu", copy=True).contiguous()
                    )
                else:
                    scalars.setdefault(names[index], {})[key] = value
        groups = [
            {k: v for k, v in group.items() if k != "params"}
            for group in state["param_groups"]
        ]
        record: dict[str, Any] = {
            "state": type(self.torch_optimizer_).__name__,
            "count": self.step_,
            "param_groups": groups,
            "scalars": scalars,
        }
        if self.scaler_ is not None:
            record["grad_scaler"] = {
                k: v if isinstance(v, (int, float)) else float(v)
                for k, v in self.scaler_.state_dict().items()
            }
        # one JSON document with sorted keys: safetensors stores metadata in a
        # hash map whose order changes from process to process
        metadata = {"optimizer": json.dumps(record, sort_keys=True)}
        return tensors, metadata

    def load(
        self, path: str | os.PathLike[str], restore_optimizer: bool | None = None
    ) -> None:
        """Restore the module's weights (and the optimizer state, as
        BaseModel.load does) from a checkpoint written by :meth:`save`."""
        config = checkpoint.read_config(path)
        self._check_compatible(config)
        classes = config.get("data_classes")
        if self.data_classes is None and type(classes) is int and classes > 0:
            self.data_classes = classes
        weights, _ = self._read(path, checkpoint.MODEL_FILE, config)
        mismatch = weights_mismatch(self.module_.state_dict(), weights)
        if mismatch:
            # a summary, not torch's message, which lists every tensor (kilobytes
            # for another architecture) and names no file
            where = os.path.join(os.fspath(path), checkpoint.MODEL_FILE)
            raise CheckpointError(
                f"{where}: the checkpoint's tensors do not match the model "
                f"{type(self.module_).__name__}: {mismatch}; was it saved by another "
                "architecture or config?"
            )
        try:
            self.module_.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"The checkpoint's tensors do not match the module: {exc}"
            ) from None
        if restore_optimizer is not False:
            tensors, metadata = self._read(path, checkpoint.OPTIMIZER_FILE, config)
            record = _optimizer_record(metadata)
            kind = type(self.torch_optimizer_).__name__
            if record.get("state") == kind:
                self._restore_optimizer(tensors, record)
            elif restore_optimizer:
                raise CheckpointError(
                    f"The checkpoint's optimizer state is {record.get('state')}, "
                    f"the model's optimizer is {kind}."
                )
        self.is_trained = True
        self._mode = None

    def _read(
        self, path: str | os.PathLike[str], name: str, config: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        from safetensors.torch import load

        data, metadata = checkpoint.read_checked_bytes(path, name, config)
        try:
            return load(data), metadata
        except Exception as exc:  # safetensors raises its own error type
            raise CheckpointError(
                f"{os.path.join(path, name)} is not a valid safetensors file: {exc}."
            ) from None

    def _restore_optimizer(
        self, tensors: Mapping[str, Any], record: Mapping[str, Any]
    ) -> None:
        count, groups = record.get("count"), record.get("param_groups")
        scalars = record.get("scalars", {})
        if type(count) is not int or count < 0 or not isinstance(scalars, dict):
            raise CheckpointError(
                "The checkpoint's optimizer metadata is invalid: no step count."
            )
        template = self.torch_optimizer_.state_dict()
        names = self._parameter_names()
        state: dict[int, dict[str, Any]] = {}
        known = set()
        for index, name in enumerate(names):
            entries = dict(scalars.get(name, {}))
            prefix = f"{name}."
            for key, value in tensors.items():
                if key.startswith(prefix) and "." not in key[len(prefix) :]:
                    entries[key[len(prefix) :]] = value
                    known.add(key)
            if entries:
                state[index] = entries
        extra = sorted(set(tensors) - known)
        if (
            extra
            or not isinstance(groups, list)
            or len(groups) != len(template["param_groups"])
        ):
            raise CheckpointError(
                "The checkpoint's optimizer state does not match the module "
                f"(unexpected {extra[:3]})."
            )
        param_groups = [
            {**saved, "params": group["params"]}
            for saved, group in zip(groups, template["param_groups"])
        ]
        try:
            self.torch_optimizer_.load_state_dict(
                {"state": state, "param_groups": param_groups}
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"The checkpoint's optimizer state does not load ({exc})."
            ) from None
        if self.scaler_ is not None and isinstance(record.get("grad_scaler"), dict):
            self.scaler_.load_state_dict(record["grad_scaler"])
        self.step_ = count


def _optimizer_record(metadata: Mapping[str, str]) -> dict[str, Any]:
    try:
        record = json.loads(metadata.get("optimizer", "{}"))
    except ValueError as exc:
        raise CheckpointError(
            f"The checkpoint's optimizer metadata is not JSON ({exc})."
        ) from None
    if not isinstance(record, dict):
        raise CheckpointError("The checkpoint's optimizer metadata is invalid.")
    return record


def model_from_config(
    config: Any,
    task: str,
    n_classes: int | None,
    input_shape: Sequence[int] | None,
) -> TorchModel:
    """The TorchModel an experiment config asks for, for data of ``task`` with
    ``n_classes`` classes and samples of ``input_shape`` (C, H, W), or None for flat
    features.

    Image models: ``model.name`` is a variant, or a family with ``architecture``
    naming the variant; ``num_classes`` defaults to the data's class count and
    ``in_channels`` to its channels. Custom modules: ``class_path`` plus their own
    constructor parameters. Device, precision and seed come from ``training``.
    """
    model, training = config.model, config.training
    params = {k: v for k, v in thaw(model.params).items()}
    common = {
        "task": task,
        "input_shape": list(input_shape) if input_shape else None,
        "device": training.device,
        "precision": training.precision,
        "seed": training.seed,
    }
    if model.name == "custom":
        class_path = params.pop("class_path")
        params.pop("optimizer_config", None)  # the harness's, not the module's
        built = TorchModel(class_path=class_path, module_params=params, **common)
        if task == "classification":
            built.data_classes = n_classes
        return built
    variant = model.name
    if model.name in IMAGE_FAMILIES:
        variant = str(model.architecture)
    if input_shape is None or len(input_shape) != 3:
        raise ModelError(
            f"model.name: {model.name} is an image model, but {config.dataset.name} "
            "holds no images; use an image dataset (mnist, cifar10, cifar100, "
            "imagenet) or an mlp."
        )
    expected = n_classes if task == "classification" else 1
    num_classes = params.get("num_classes", expected)
    if expected is not None and num_classes != expected:
        raise ModelError(
            f"model.params.num_classes is {num_classes}, but the data has "
            f"{expected} {'classes' if task == 'classification' else 'output'}."
        )
    channels = params.get("in_channels", input_shape[0])
    if channels != input_shape[0]:
        raise ModelError(
            f"model.params.in_channels is {channels}, but {config.dataset.name} "
            f"images have {input_shape[0]} channel(s)."
        )
    return TorchModel(
        architecture=variant,
        num_classes=num_classes,
        in_channels=channels,
        pretrained=bool(params.get("pretrained", False)),
        dropout=params.get("dropout"),
        **common,
    )
