"""The built-in backbones, one module (one :class:`~tsm.models.specs.BackboneSpec`) each; importing
this package registers them, in this order."""

from tsm.models.backbones import resnet  # noqa: F401, I001 (registration order: ResNets, MobileNetV2, MobileOne)
from tsm.models.backbones import mobilenet_v2, mobileone  # noqa: F401
from tsm.models.backbones.mobileone_network import MobileOne, MobileOneBlock

__all__ = ["MobileOne", "MobileOneBlock"]
