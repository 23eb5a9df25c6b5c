<#ftl output_format="plainText">
${msg("twostepHelpFiledBody", realmName, twostepAskedAt, twostepAddress)}
