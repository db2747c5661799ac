//! Helpers shared by the passes that add sections to a module.

use wasm_encoder::SectionId;

/// The position of a section in a module's canonical order (custom sections first, as they may
/// appear anywhere); a pass that must create a missing section emits it before the first section
/// of higher rank.
pub(super) fn rank(id: SectionId) -> u8 {
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}
