"""Vocabularies shared by models and forms.

The codes are the ones the rules engine (``planner.rules``) speaks; labels are for people.
"""

from django.db import models


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other / not listed"
    UNKNOWN = "unknown", "Not recorded"


class Laterality(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    MIDLINE = "midline", "Midline"


class Region(models.TextChoices):
    SCALP = "scalp", "Scalp"
    UPPER_FACE = "upper_face", "Upper face"
    PERIORBITAL = "periorbital", "Periorbital"
    MIDFACE = "midface", "Midface"
    PERIORAL = "perioral", "Perioral"
    LOWER_FACE = "lower_face", "Lower face"
    NECK = "neck", "Neck"


class Instrument(models.TextChoices):
    NEEDLE = "needle", "Needle"
    CANNULA = "cannula", "Cannula"


class Depth(models.TextChoices):
    SUPERFICIAL_DERMIS = "superficial_dermis", "Superficial dermis"
    DERMIS = "dermis", "Dermis"
    SUBDERMIS = "subdermis", "Immediate subdermis"
    SUBCUTANEOUS = "subcutaneous", "Subcutaneous"
    INTRAMUSCULAR = "intramuscular", "Intramuscular"
    SUPRAPERIOSTEAL = "supraperiosteal", "Supraperiosteal"


class Technique(models.TextChoices):
    RETROGRADE = "retrograde", "Retrograde"
    ANTEROGRADE = "anterograde", "Anterograde"
    BOLUS = "bolus", "Bolus"
    FANNING = "fanning", "Fanning"


class Goal(models.TextChoices):
    REJUVENATION = "rejuvenation", "Skin rejuvenation"
    SCAR = "scar", "Scar improvement"
    VOLUMIZATION = "volumization", "Volume restoration"


class Indication(models.TextChoices):
    """The summary's primary indications (clinical summary, refs 1-4, 6)."""

    SKIN_QUALITY = "skin_quality", "Skin quality / facial rejuvenation"
    FINE_LINES = "fine_lines", "Fine lines and superficial wrinkles"
    SCARS = "scars", "Scars (acne, surgical, burn)"
    DARK_LOWER_EYELIDS = "dark_lower_eyelids", "Dark lower eyelids"
    SUN_DAMAGE = "sun_damage", "Sun-damaged skin"
    CHRONIC_WOUND = "chronic_wound", "Chronic wound"
    ALOPECIA = "alopecia", "Alopecia"


class Combination(models.TextChoices):
    NONE = "none", "None"
    PRF = "prf", "Platelet-rich fibrin (PRF)"
    PRP = "prp", "Platelet-rich plasma (PRP)"


class DonorSite(models.TextChoices):
    ABDOMEN = "abdomen", "Abdomen"
    FLANK = "flank", "Flank"
    INNER_THIGH = "inner_thigh", "Inner thigh"
    OUTER_THIGH = "outer_thigh", "Outer thigh"
    KNEE = "knee", "Medial knee"
    OTHER = "other", "Other"


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready for consent"
    CONSENTED = "consented", "Consented"
    PERFORMED = "performed", "Performed"
    CANCELLED = "cancelled", "Cancelled"


class ReferenceKey(models.TextChoices):
    """Every value the rules read; see ``planner.rules.ReferenceSnapshot``."""

    ZONE_VOLUME_ML = "zone_volume_ml", "Volume per treatment zone"
    NEEDLE_GAUGE = "needle_gauge", "Needle gauge"
    CANNULA_GAUGE = "cannula_gauge", "Cannula gauge"
    ALLOWED_DEPTHS = "allowed_depths", "Documented injection depths"
    PERIORAL_FORBIDDEN_DEPTHS = (
        "perioral_forbidden_depths",
        "Perioral depths at or below orbicularis oris",
    )
    RECOMMENDED_TECHNIQUES = "recommended_techniques", "Recommended injection technique"
    DOCUMENTED_INDICATIONS = "documented_indications", "Documented indications"
    VOLUME_EFFECT_MONTHS = "volume_effect_months", "Duration of any volumizing effect"


RANGE_KEYS = frozenset(
    {
        ReferenceKey.ZONE_VOLUME_ML,
        ReferenceKey.NEEDLE_GAUGE,
        ReferenceKey.CANNULA_GAUGE,
        ReferenceKey.VOLUME_EFFECT_MONTHS,
    }
)


class AuditAction(models.TextChoices):
    VIEW = "view", "Viewed"
    CREATE = "create", "Created"
    CHANGE = "change", "Changed"
    DELETE = "delete", "Deleted"
    PRINT = "print", "Printed"
    CONSENT = "consent", "Consent recorded"
    TRANSITION = "transition", "Status changed"
    LOGIN = "login", "Logged in"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOGOUT = "logout", "Logged out"
    REFERENCE_CHANGE = "reference_change", "Reference values changed"


class Role(models.TextChoices):
    SURGEON = "surgeon", "Surgeon"
    STAFF = "staff", "Clinic staff"
    ADMIN = "admin", "Clinic admin"
