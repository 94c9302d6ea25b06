//! `#[derive(Tokens)]`: the `Tokens` impl of a reconcile local state or an external
//! request/response/state type, generated from its fields so that none is forgotten.
//!
//! The generated `visit` and `visit_tokens` visit every field (in declaration order) and
//! `rename` rebuilds the value from every field renamed; so every field's type must implement
//! `Tokens`
//! (`anvil_reconciler::tokens` implements it for strings, numbers, `bool`, options,
//! collections, tuples, `Result`, JSON values, objects and the reconciler's request and
//! response types). Each type parameter gets a `Tokens` bound.
//!
//! Attributes:
//!
//! * `#[tokens(skip)]` on a field: neither visited nor renamed (it is cloned). Only for
//!   fields that can never hold a token (e.g. a function pointer); the debug-build guard
//!   `anvil_reconciler::tokens::check_tokens_reported` reports a token found in such a field.
//! * `#[tokens(crate = "path")]` on the type: where the `tokens` module lives when the
//!   reconciler crate is not reachable as `::anvil_reconciler` (the default path is
//!   `::anvil_reconciler::tokens`).
//!
//! The trait, its soundness argument and the derive's re-export live in `anvil_reconciler`
//! (`anvil_reconciler::Tokens` names both the trait and this derive).

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{
    Data, DeriveInput, Fields, GenericParam, Ident, LitStr, Path, parse_macro_input, parse_quote,
};

/// Derives `anvil_reconciler::tokens::Tokens` for a struct (named, tuple or unit) or an enum:
/// see the crate documentation.
#[proc_macro_derive(Tokens, attributes(tokens))]
pub fn derive_tokens(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Parses `#[tokens(...)]` on the type: the `crate = "path"` option.
fn module_path(input: &DeriveInput) -> syn::Result<Path> {
    let mut path: Path = parse_quote!(::anvil_reconciler::tokens);
    for attr in &input.attrs {
        if !attr.path().is_ident("tokens") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                let krate: Path = lit.parse()?;
                path = parse_quote!(#krate::tokens);
                Ok(())
            } else {
                Err(meta.error("unknown `tokens` option on a type (expected `crate = \"...\"`)"))
            }
        })?;
    }
    Ok(path)
}

/// True when the field has `#[tokens(skip)]`.
fn skipped(field: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for attr in &field.attrs {
        if !attr.path().is_ident("tokens") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown `tokens` option on a field (expected `skip`)"))
            }
        })?;
    }
    Ok(skip)
}

/// For the fields of one struct or variant: the binding pattern (`{ a: __t0, .. }`,
/// `(__t0, ..)` or nothing), the visit statements and the rebuilt value's fields.
struct Expanded {
    pattern: TokenStream2,
    visit: Vec<TokenStream2>,
    visit_tokens: Vec<TokenStream2>,
    rebuild: TokenStream2,
}

fn expand_fields(fields: &Fields, m: &Path) -> syn::Result<Expanded> {
    let f = Ident::new("__tokens_f", Span::call_site());
    let r = Ident::new("__tokens_r", Span::call_site());
    let mut visit = Vec::new();
    let mut visit_tokens = Vec::new();
    let mut binds = Vec::new();
    let mut values = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let bind = format_ident!("__tokens_{}", i);
        if skipped(field)? {
            values.push(quote!(::core::clone::Clone::clone(#bind)));
        } else {
            visit.push(quote!(#m::Tokens::visit(#bind, #f);));
            visit_tokens.push(quote!(#m::Tokens::visit_tokens(#bind, #f);));
            values.push(quote!(#m::Tokens::rename(#bind, #r)));
        }
        binds.push(bind);
    }
    let (pattern, rebuild) = match fields {
        Fields::Named(named) => {
            let names: Vec<&Ident> = named
                .named
                .iter()
                .map(|x| x.ident.as_ref().unwrap())
                .collect();
            (
                quote!({ #(#names: #binds),* }),
                quote!({ #(#names: #values),* }),
            )
        }
        Fields::Unnamed(_) => (quote!(( #(#binds),* )), quote!(( #(#values),* ))),
        Fields::Unit => (quote!(), quote!()),
    };
    Ok(Expanded {
        pattern,
        visit,
        visit_tokens,
        rebuild,
    })
}

fn expand(mut input: DeriveInput) -> syn::Result<TokenStream2> {
    let m = module_path(&input)?;
    let name = input.ident.clone();
    // Every type parameter must itself be `Tokens`.
    let params: Vec<Ident> = input
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.clone()),
            _ => None,
        })
        .collect();
    {
        let wc = input.generics.make_where_clause();
        for p in &params {
            wc.predicates.push(parse_quote!(#p: #m::Tokens));
        }
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let f = Ident::new("__tokens_f", Span::call_site());
    let r = Ident::new("__tokens_r", Span::call_site());

    let (visit_body, visit_tokens_body, rename_body) = match &input.data {
        Data::Struct(s) => {
            let e = expand_fields(&s.fields, &m)?;
            let (pattern, visit, visit_tokens, rebuild) =
                (e.pattern, e.visit, e.visit_tokens, e.rebuild);
            (
                quote! {
                    let #name #pattern = self;
                    #(#visit)*
                },
                quote! {
                    let #name #pattern = self;
                    #(#visit_tokens)*
                },
                quote! {
                    let #name #pattern = self;
                    #name #rebuild
                },
            )
        }
        Data::Enum(en) => {
            if en.variants.is_empty() {
                (
                    quote!(match *self {}),
                    quote!(match *self {}),
                    quote!(match *self {}),
                )
            } else {
                let mut visit_arms = Vec::new();
                let mut visit_tokens_arms = Vec::new();
                let mut rename_arms = Vec::new();
                for v in &en.variants {
                    let vname = &v.ident;
                    let e = expand_fields(&v.fields, &m)?;
                    let (pattern, visit, visit_tokens, rebuild) =
                        (e.pattern, e.visit, e.visit_tokens, e.rebuild);
                    visit_arms.push(quote!(#name::#vname #pattern => { #(#visit)* }));
                    visit_tokens_arms.push(quote!(#name::#vname #pattern => { #(#visit_tokens)* }));
                    rename_arms.push(quote!(#name::#vname #pattern => #name::#vname #rebuild,));
                }
                (
                    quote!(match self { #(#visit_arms)* }),
                    quote!(match self { #(#visit_tokens_arms)* }),
                    quote!(match self { #(#rename_arms)* }),
                )
            }
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "#[derive(Tokens)] does not support unions",
            ));
        }
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #m::Tokens for #name #ty_generics #where_clause {
            #[allow(unused_variables)]
            fn visit(&self, #f: &mut dyn ::core::ops::FnMut(&str)) {
                #visit_body
            }
            #[allow(unused_variables)]
            fn visit_tokens(&self, #f: &mut dyn ::core::ops::FnMut(#m::Space, u64)) {
                #visit_tokens_body
            }
            #[allow(unused_variables)]
            fn rename(&self, #r: &#m::Renaming) -> Self {
                #rename_body
            }
        }
    })
}
